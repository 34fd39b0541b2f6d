import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { TenantStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";

const database = useTestDatabase();
const tenants = () => new TenantStore(database().pool, database().prisma);

async function secrets(tenantId: string) {
  const { rows } = await database().pool.query<{ webhookSecret: string; previousWebhookSecret: string | null; previousSecretExpiresAt: Date | null; expiresIn: number | null }>(
    `select "webhookSecret", "previousWebhookSecret", "previousSecretExpiresAt", extract(epoch from "previousSecretExpiresAt" - now())::float8 as "expiresIn" from tenants where id = $1`,
    [tenantId],
  );
  return rows[0]!;
}

describe("TenantStore.webhookSecret", () => {
  it("returns the tenant's signing secret, and null for an unknown tenant", async () => {
    const { tenant } = await tenants().createKey(`acme-${crypto.randomUUID()}`);
    expect(await tenants().webhookSecret(tenant.id)).toEqual({ secret: (await secrets(tenant.id)).webhookSecret, previousExpiresAt: null });
    expect(await tenants().webhookSecret(crypto.randomUUID())).toBeNull();
  });
});

describe("TenantStore.rotateWebhookSecret", () => {
  it("makes a new secret and keeps the old one signing for the window", async () => {
    const { tenant } = await tenants().createKey(`acme-${crypto.randomUUID()}`);
    const old = (await secrets(tenant.id)).webhookSecret;
    const rotated = await tenants().rotateWebhookSecret(tenant.id, 3600);
    const row = await secrets(tenant.id);
    expect(rotated).toEqual({ secret: row.webhookSecret, previousExpiresAt: row.previousSecretExpiresAt });
    expect(row.webhookSecret).not.toBe(old);
    expect(row.webhookSecret).toMatch(/^whsec_/);
    expect(row.previousWebhookSecret).toBe(old);
    // Set from the database's clock inside the statement: about an hour from now.
    expect(row.expiresIn).toBeGreaterThan(3500);
    expect(row.expiresIn).toBeLessThanOrEqual(3600);
    expect(await tenants().webhookSecret(tenant.id)).toEqual(rotated);
  });

  it("replaces the previous secret on a second rotation", async () => {
    const { tenant } = await tenants().createKey(`acme-${crypto.randomUUID()}`);
    const first = await tenants().rotateWebhookSecret(tenant.id, 60);
    await tenants().rotateWebhookSecret(tenant.id, 60);
    expect((await secrets(tenant.id)).previousWebhookSecret).toBe(first!.secret);
  });

  it("returns null for an unknown tenant", async () => {
    expect(await tenants().rotateWebhookSecret(crypto.randomUUID(), 60)).toBeNull();
  });
});
