import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashApiKey, isWellFormedApiKey, TenantStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";

const database = useTestDatabase({ poolSize: 8 });
const tenants = () => new TenantStore(database().pool, database().prisma);
const uniqueName = () => `acme-${crypto.randomUUID()}`;

async function lastUsedAt(keyId: string): Promise<Date | null> {
  const { rows } = await database().pool.query<{ lastUsedAt: Date | null }>(
    `select "lastUsedAt" from api_keys where id = $1`,
    [keyId],
  );
  return rows[0]!.lastUsedAt;
}

describe("TenantStore.createKey", () => {
  it("creates the tenant with a signing secret on its first key, and adds keys to it afterwards", async () => {
    const name = uniqueName();
    const first = await tenants().createKey(name, "ci");
    const second = await tenants().createKey(name);
    expect(second.tenant).toEqual(first.tenant);
    expect(first.tenant.name).toBe(name);
    expect(first.keyId).not.toBe(second.keyId);
    expect(isWellFormedApiKey(first.key)).toBe(true);
    expect((await tenants().webhookSecret(first.tenant.id))?.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  });

  // Prisma's upsert (a read, then an insert) failed all but one of these with P2002.
  it("creates the tenant once when first keys for it are created concurrently", async () => {
    for (let round = 0; round < 5; round++) {
      const name = uniqueName();
      const created = await Promise.all(Array.from({ length: 6 }, () => tenants().createKey(name)));
      expect(new Set(created.map((c) => c.tenant.id)).size).toBe(1);
    }
  });

  it("stores only the key's hash and a short prefix", async () => {
    const created = await tenants().createKey(uniqueName());
    const { rows } = await database().pool.query(`select prefix, "keyHash", name from api_keys where id = $1`, [
      created.keyId,
    ]);
    expect(rows[0]).toEqual({ prefix: created.key.slice(0, 10), keyHash: hashApiKey(created.key), name: null });
    const { rows: leaks } = await database().pool.query(`select 1 from api_keys where "keyHash" = $1 or prefix = $1`, [
      created.key,
    ]);
    expect(leaks).toEqual([]);
  });
});

describe("TenantStore.authenticate", () => {
  it("returns the key's tenant, and records when the key was used", async () => {
    const created = await tenants().createKey(uniqueName());
    expect(await lastUsedAt(created.keyId)).toBeNull();
    expect(await tenants().authenticate(created.key)).toEqual(created.tenant);
    expect(await lastUsedAt(created.keyId)).toBeInstanceOf(Date);
  });

  it("writes lastUsedAt at most once a minute per key", async () => {
    const created = await tenants().createKey(uniqueName());
    await tenants().authenticate(created.key);
    const first = await lastUsedAt(created.keyId);
    await tenants().authenticate(created.key);
    expect(await lastUsedAt(created.keyId)).toEqual(first);

    await database().pool.query(
      `update api_keys set "lastUsedAt" = "lastUsedAt" - interval '61 seconds' where id = $1`,
      [created.keyId],
    );
    const aged = await lastUsedAt(created.keyId);
    await tenants().authenticate(created.key);
    expect((await lastUsedAt(created.keyId))!.getTime()).toBeGreaterThan(aged!.getTime());
  });

  it("refuses an unknown key, a malformed one, and a revoked one (whose lastUsedAt stays)", async () => {
    const created = await tenants().createKey(uniqueName());
    expect(await tenants().authenticate(`il_${crypto.randomBytes(32).toString("base64url")}`)).toBeNull();
    expect(await tenants().authenticate("not a key")).toBeNull();
    expect(await tenants().authenticate(`${created.key}x`)).toBeNull();

    await tenants().revokeKey(created.keyId);
    expect(await tenants().authenticate(created.key)).toBeNull();
    expect(await lastUsedAt(created.keyId)).toBeNull();
  });
});

describe("TenantStore.listKeys", () => {
  it("lists the tenant's keys oldest first, without the key or its hash; null for an unknown tenant", async () => {
    const name = uniqueName();
    const a = await tenants().createKey(name, "first");
    const b = await tenants().createKey(name, "second");
    await tenants().createKey(uniqueName()); // another tenant's
    await tenants().revokeKey(a.keyId);

    const listed = await tenants().listKeys(name);
    expect(listed?.tenant).toEqual(a.tenant);
    expect(listed?.keys.map((k) => [k.id, k.name, k.prefix, k.revokedAt instanceof Date])).toEqual([
      [a.keyId, "first", a.key.slice(0, 10), true],
      [b.keyId, "second", b.key.slice(0, 10), false],
    ]);
    expect(Object.keys(listed!.keys[0]!).sort()).toEqual([
      "createdAt",
      "id",
      "lastUsedAt",
      "name",
      "prefix",
      "revokedAt",
    ]);
    expect(await tenants().listKeys(uniqueName())).toBeNull();
  });
});

describe("TenantStore.revokeKey", () => {
  it("revokes once: a second call keeps the first time and says it was revoked already", async () => {
    const created = await tenants().createKey(uniqueName());
    const first = await tenants().revokeKey(created.keyId);
    expect(first).toMatchObject({
      keyId: created.keyId,
      keyHash: hashApiKey(created.key),
      tenant: created.tenant,
      alreadyRevoked: false,
    });
    const again = await tenants().revokeKey(created.keyId);
    expect(again).toMatchObject({ alreadyRevoked: true, revokedAt: first!.revokedAt });
  });

  it("returns null for an unknown id and for one that is not a uuid", async () => {
    expect(await tenants().revokeKey(crypto.randomUUID())).toBeNull();
    expect(await tenants().revokeKey("il_abc")).toBeNull();
  });
});
