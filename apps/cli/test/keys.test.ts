import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, hashApiKey, TenantStore } from "@inferline/db";
import { keyRevokedChannel } from "@inferline/queue";
import { createTestDatabase, sleepUntil, testRedisUrl, uniquePrefix, type TestDatabase } from "@inferline/testing";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("inferline keys create", () => {
  it("prints a new key on the last line of stdout; the key authenticates its tenant and is stored only hashed", async () => {
    const run = await cli(["keys", "create", "--tenant", "acme"], { DATABASE_URL: db.url });
    expect(run.code).toBe(0);
    const key = run.stdout.trim().split("\n").at(-1)!;
    expect(key).toMatch(/^il_[A-Za-z0-9_-]{40,}$/);
    const admin = new Database(db.url, { poolSize: 1 });
    try {
      expect(await new TenantStore(admin.pool, admin.prisma).authenticate(key)).toMatchObject({ name: "acme" });
      const stored = await admin.pool.query(`select "keyHash" from api_keys`);
      expect(JSON.stringify(stored.rows)).not.toContain(key);
    } finally {
      await admin.close();
    }
  });

  it("with PostgreSQL down: exit 3 and one line naming the URL", async () => {
    const run = await cli(["keys", "create", "--tenant", "acme"], {
      DATABASE_URL: "postgresql://postgres@127.0.0.1:1/inferline",
    });
    expect(run.code).toBe(3);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain("PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/inferline");
  });
});

describe("inferline keys list and revoke", () => {
  let admin: Database;
  let tenants: TenantStore;
  beforeAll(async () => {
    admin = new Database(db.url, { poolSize: 1 });
    tenants = new TenantStore(admin.pool, admin.prisma);
  });
  afterAll(async () => {
    await admin?.close();
  });

  it("list: a table of keys (id, prefix, name, created, last used, revoked or active), or JSON; an unknown tenant is exit 2 with one line", async () => {
    const first = await tenants.createKey("lister", "ci\tbot");
    const second = await tenants.createKey("lister");
    // A lookup records lastUsedAt.
    const before = Date.now();
    expect(await tenants.authenticate(first.key)).toMatchObject({ name: "lister" });

    const args = ["keys", "list", "--tenant", "lister", "--database-url", db.url];
    const [table, listed, unknown] = await Promise.all([
      cli(args, {}),
      cli([...args, "--json"], {}),
      cli(["keys", "list", "--tenant", "nobody", "--database-url", db.url], {}),
    ]);
    expect(table.code).toBe(0);
    const rows = table.stdout.trim().split("\n");
    expect(rows[0]!.split(/\s{2,}/)).toEqual(["ID", "PREFIX", "NAME", "CREATED", "LAST USED", "REVOKED"]);
    expect(rows.slice(1).find((r) => r.startsWith(first.keyId))).toContain("ci bot");
    expect(rows).toHaveLength(3);

    expect(listed.code).toBe(0);
    const keys = JSON.parse(listed.stdout) as Array<Record<string, string | null>>;
    expect(keys).toHaveLength(2);
    const byId = new Map(keys.map((k) => [k.id, k]));
    const shown = byId.get(first.keyId)!;
    expect(shown).toMatchObject({ prefix: first.key.slice(0, 10), name: "ci\tbot", revokedAt: null });
    expect(new Date(shown.createdAt!).toISOString()).toBe(shown.createdAt);
    // Written in UTC like Prisma's own timestamps (the column has no time zone).
    expect(Math.abs(new Date(shown.lastUsedAt!).getTime() - before)).toBeLessThan(60_000);
    expect(byId.get(second.keyId)).toMatchObject({ name: null, lastUsedAt: null, revokedAt: null });
    for (const out of [table.stdout, listed.stdout]) {
      expect(out).not.toContain(first.key);
      expect(out).not.toContain(hashApiKey(first.key));
    }

    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr.trim().split("\n")).toEqual(['inferline: no tenant named "nobody"']);
  });

  it("revoke: sets revokedAt once, announces the key's hash (never the key) on Redis, and is idempotent; list shows the time", async () => {
    const created = await tenants.createKey("revoker");
    const prefix = uniquePrefix();
    const subscriber = new Redis(testRedisUrl());
    const messages: string[] = [];
    try {
      subscriber.on("message", (_channel: string, message: string) => messages.push(message));
      await subscriber.subscribe(keyRevokedChannel(prefix));
      const args = [
        "keys",
        "revoke",
        created.keyId,
        "--database-url",
        db.url,
        "--redis-url",
        testRedisUrl(),
        "--queue-prefix",
        prefix,
      ];
      const run = await cli(args, {});
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`revoked key ${created.keyId} of tenant revoker at `);
      expect(await tenants.authenticate(created.key)).toBeNull();
      await sleepUntil(() => messages.length >= 1, { message: "revocation announced" });
      expect(messages).toEqual([hashApiKey(created.key)]);

      const revokedAt = (await admin.prisma.apiKey.findUnique({ where: { id: created.keyId } }))!.revokedAt!;
      const again = await cli(args, {});
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`was already revoked at ${revokedAt.toISOString()}`);
      expect((await admin.prisma.apiKey.findUnique({ where: { id: created.keyId } }))!.revokedAt).toEqual(revokedAt);
      // Announced again: a repeat is how an operator retries after Redis was down.
      await sleepUntil(() => messages.length >= 2, { message: "second announcement" });

      const listed = await cli(["keys", "list", "--tenant", "revoker", "--database-url", db.url, "--json"], {});
      expect((JSON.parse(listed.stdout) as Array<{ revokedAt: string }>)[0]!.revokedAt).toBe(revokedAt.toISOString());
    } finally {
      subscriber.disconnect();
    }
  });

  it("revoke: an unknown id is exit 2 with one line; with Redis down it still revokes and warns about the cache TTL", async () => {
    const created = await tenants.createKey("redisless");
    const [unknown, notUuid, redisDown] = await Promise.all([
      cli(["keys", "revoke", "00000000-0000-4000-8000-000000000000", "--database-url", db.url], {}),
      cli(["keys", "revoke", "not-a-key-id", "--database-url", db.url], {}),
      cli(["keys", "revoke", created.keyId, "--database-url", db.url, "--redis-url", "redis://127.0.0.1:1"], {}),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split("\n")).toEqual([
      'inferline: no API key with id "00000000-0000-4000-8000-000000000000"',
    ]);
    expect(notUuid.code).toBe(2);
    expect(notUuid.stderr.trim().split("\n")).toHaveLength(1);

    expect(redisDown.code, redisDown.stderr).toBe(0);
    expect(redisDown.stdout).toContain(`revoked key ${created.keyId}`);
    expect(redisDown.stderr.trim().split("\n")).toHaveLength(1);
    expect(redisDown.stderr).toContain("redis://127.0.0.1:1");
    expect(redisDown.stderr).toContain("for up to 30 s");
    expect(await tenants.authenticate(created.key)).toBeNull();
  });
});
