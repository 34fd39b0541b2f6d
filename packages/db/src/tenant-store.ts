import crypto from "node:crypto";
import type { PrismaClient } from "./generated/prisma/client.ts";

export interface Tenant {
  id: string;
  name: string;
}

export interface CreatedKey {
  tenant: Tenant;
  keyId: string;
  /** The key itself: shown once, never stored. */
  key: string;
}

const KEY_PREFIX = "il_";

/** API keys are random 256-bit tokens; only their SHA-256 is stored, so a database leak leaks no key. */
export function hashApiKey(key: string): string {
  return crypto.createHash("sha256").update(key).digest("hex");
}

export function newWebhookSecret(): string {
  return `whsec_${crypto.randomBytes(32).toString("base64")}`;
}

export class TenantStore {
  constructor(private readonly prisma: PrismaClient) {}

  /** Creates the tenant when it does not exist, then a new key for it. */
  async createKey(tenantName: string, keyName?: string): Promise<CreatedKey> {
    const tenant = await this.prisma.tenant.upsert({
      where: { name: tenantName },
      create: { name: tenantName, webhookSecret: newWebhookSecret() },
      update: {},
      select: { id: true, name: true },
    });
    const key = `${KEY_PREFIX}${crypto.randomBytes(32).toString("base64url")}`;
    const row = await this.prisma.apiKey.create({
      data: { tenantId: tenant.id, prefix: key.slice(0, 10), keyHash: hashApiKey(key), name: keyName ?? null },
    });
    return { tenant, keyId: row.id, key };
  }

  /** The tenant a key belongs to, or null for an unknown or revoked key. */
  async authenticate(key: string): Promise<Tenant | null> {
    if (!key.startsWith(KEY_PREFIX)) return null;
    const row = await this.prisma.apiKey.findUnique({
      where: { keyHash: hashApiKey(key) },
      select: { revokedAt: true, tenant: { select: { id: true, name: true } } },
    });
    return row && !row.revokedAt ? row.tenant : null;
  }
}
