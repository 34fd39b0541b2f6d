import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { MAX_PREVIOUS_WEBHOOK_SECRETS, TenantStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";

const database = useTestDatabase();
const tenants = () => new TenantStore(database().pool, database().prisma);

/** The tenant's secrets as stored: the current one, and each previous one with the seconds it has left to sign. */
async function secrets(tenantId: string) {
  const { rows } = await database().pool.query<{
    webhookSecret: string;
    previous: Array<{ secret: string; expiresIn: number }>;
  }>(
    `select "webhookSecret", (select coalesce(json_agg(json_build_object('secret', p->>'secret', 'expiresIn', extract(epoch from (p->>'expiresAt')::timestamptz - now()))), '[]')
       from jsonb_array_elements("previousWebhookSecrets") as p) as previous
     from tenants where id = $1`,
    [tenantId],
  );
  return rows[0]!;
}

async function newTenant(): Promise<string> {
  return (await tenants().createKey(`acme-${crypto.randomUUID()}`)).tenant.id;
}

describe("TenantStore.webhookSecret", () => {
  it("returns the tenant's signing secret, and null for an unknown tenant", async () => {
    const tenant = await newTenant();
    expect(await tenants().webhookSecret(tenant)).toEqual({
      secret: (await secrets(tenant)).webhookSecret,
      previousExpiresAt: null,
    });
    expect(await tenants().webhookSecret(crypto.randomUUID())).toBeNull();
  });
});

describe("TenantStore.rotateWebhookSecret", () => {
  it("makes a new secret and keeps the old one signing for the window", async () => {
    const tenant = await newTenant();
    const old = (await secrets(tenant)).webhookSecret;
    const rotated = await tenants().rotateWebhookSecret(tenant, 3600);
    const row = await secrets(tenant);
    expect(rotated?.secret).toBe(row.webhookSecret);
    expect(row.webhookSecret).not.toBe(old);
    expect(row.webhookSecret).toMatch(/^whsec_/);
    expect(row.previous.map((p) => p.secret)).toEqual([old]);
    // Set from the database's clock inside the statement: about an hour from now.
    expect(row.previous[0]!.expiresIn).toBeGreaterThan(3500);
    expect(row.previous[0]!.expiresIn).toBeLessThanOrEqual(3600);
    expect((rotated!.previousExpiresAt!.getTime() - Date.now()) / 1000).toBeGreaterThan(3500);
    expect(await tenants().webhookSecret(tenant)).toEqual(rotated);
  });

  it("keeps every secret a rotation replaced signing for its own window, newest first, when it rotates again inside it", async () => {
    const tenant = await newTenant();
    const original = (await secrets(tenant)).webhookSecret;
    const first = await tenants().rotateWebhookSecret(tenant, 3600);
    const second = await tenants().rotateWebhookSecret(tenant, 7200);
    const row = await secrets(tenant);
    expect(row.previous.map((p) => p.secret)).toEqual([first!.secret, original]);
    expect(row.previous[0]!.expiresIn).toBeGreaterThan(7100);
    expect(row.previous[1]!.expiresIn).toBeGreaterThan(3500);
    expect(row.previous[1]!.expiresIn).toBeLessThanOrEqual(3600);
    // The view's expiry is the latest: until then some previous secret still signs.
    expect(second!.previousExpiresAt!.getTime()).toBeGreaterThan(first!.previousExpiresAt!.getTime());
  });

  it("drops previous secrets past their window, and the oldest past MAX_PREVIOUS_WEBHOOK_SECRETS", async () => {
    const tenant = await newTenant();
    await tenants().rotateWebhookSecret(tenant, 0);
    expect((await secrets(tenant)).previous).toEqual([]);
    expect((await tenants().webhookSecret(tenant))?.previousExpiresAt).toBeNull();

    const replaced: string[] = [];
    for (let i = 0; i < MAX_PREVIOUS_WEBHOOK_SECRETS + 2; i++) {
      replaced.unshift((await secrets(tenant)).webhookSecret);
      await tenants().rotateWebhookSecret(tenant, 3600);
    }
    expect((await secrets(tenant)).previous.map((p) => p.secret)).toEqual(
      replaced.slice(0, MAX_PREVIOUS_WEBHOOK_SECRETS),
    );
  });

  it("returns null for an unknown tenant", async () => {
    expect(await tenants().rotateWebhookSecret(crypto.randomUUID(), 60)).toBeNull();
  });
});
