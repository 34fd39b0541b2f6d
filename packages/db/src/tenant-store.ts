import crypto from "node:crypto";
import type pg from "pg";
import type { PrismaClient } from "./generated/prisma/client.ts";

export interface Tenant {
  id: string;
  name: string;
  /** Share of a model's workers while several tenants have work queued (fair share). Default 1. */
  weight: number;
  /** Most jobs and batch items it may have queued at once; null: the API's DEFAULT_TENANT_MAX_QUEUED. */
  maxQueued: number | null;
}

/** What `inferline tenants set` changes; a field left out stays as it is, `maxQueued: null` clears the quota. */
export interface TenantSettings {
  weight?: number;
  maxQueued?: number | null;
}

/** The columns of a Tenant, for Prisma selects. */
const TENANT_SELECT = { id: true, name: true, weight: true, maxQueued: true } as const;

export interface CreatedKey {
  tenant: Tenant;
  keyId: string;
  /** The key itself: shown once, never stored. */
  key: string;
}

/** What `inferline keys list` shows of a key: never the key or its hash. */
export interface ApiKeyInfo {
  id: string;
  prefix: string;
  name: string | null;
  createdAt: Date;
  /** Updated at most once a minute, when an API process looks the key up (about every 30 s while in use). */
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface RevokedKey {
  keyId: string;
  /** What API processes cache the key by; the revocation is announced with it. */
  keyHash: string;
  tenant: Tenant;
  revokedAt: Date;
  /** True when the key had been revoked before this call (its revokedAt is unchanged). */
  alreadyRevoked: boolean;
}

const KEY_PREFIX = "il_";
/** Every key createKey makes: the prefix and 32 random bytes in base64url (43 characters). */
const KEY_PATTERN = /^il_[A-Za-z0-9_-]{43}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** lastUsedAt is written at most this often per key, so a busy key costs no write per lookup. */
const LAST_USED_RESOLUTION_S = 60;

/** API keys are random 256-bit tokens; only their SHA-256 is stored, so a database leak leaks no key. */
export function hashApiKey(key: string): string {
  return crypto.hash("sha256", key, "hex");
}

/** True when `key` has the shape of a key createKey makes; anything else is refused without a lookup. */
export function isWellFormedApiKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function newWebhookSecret(): string {
  return `whsec_${crypto.randomBytes(32).toString("base64")}`;
}

/** A tenant's webhook signing secret, and until when a previous one still signs (the latest expiry; null: none does). */
export interface WebhookSecret {
  secret: string;
  previousExpiresAt: Date | null;
}

/**
 * Most previous secrets a tenant keeps signing with: a rotation past it drops the oldest before
 * its window ends. Each costs every delivery of the tenant a signature (about 50 bytes of header).
 */
export const MAX_PREVIOUS_WEBHOOK_SECRETS = 10;

/** The latest expiry of a tenant row's previous secrets still signing (SQL; the row's table is `t`). */
const PREVIOUS_EXPIRES_AT = `(select max((p->>'expiresAt')::timestamptz) from jsonb_array_elements(t."previousWebhookSecrets") as p
  where (p->>'expiresAt')::timestamptz > now())`;

export class TenantStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly prisma: PrismaClient,
  ) {}

  /** Creates the tenant when it does not exist, then a new key for it. */
  async createKey(tenantName: string, keyName?: string): Promise<CreatedKey> {
    // One statement, not Prisma's upsert (a read, then an insert): concurrent first keys of a
    // new tenant would otherwise race on its unique name and all but one fail.
    const { rows } = await this.pool.query<Tenant>(
      `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, $2)
       on conflict (name) do update set name = excluded.name
       returning id, name, weight, "maxQueued"`,
      [tenantName, newWebhookSecret()],
    );
    const tenant = rows[0]!;
    const key = `${KEY_PREFIX}${crypto.randomBytes(32).toString("base64url")}`;
    const row = await this.prisma.apiKey.create({
      data: { tenantId: tenant.id, prefix: key.slice(0, 10), keyHash: hashApiKey(key), name: keyName ?? null },
    });
    return { tenant, keyId: row.id, key };
  }

  /**
   * The tenant a key belongs to, or null for an unknown, malformed or revoked key. The same
   * statement records lastUsedAt when it is a minute old or more: no second round trip, and no
   * write left running after the caller (a floating Prisma write made Database.close() hang).
   * API processes look a key up about every 30 s while it is in use (their cache TTL), so
   * lastUsedAt trails the real last use by at most about 90 s.
   */
  async authenticate(key: string): Promise<Tenant | null> {
    if (!isWellFormedApiKey(key)) return null;
    const rows = await this.prisma.$queryRaw<
      { tenantId: string; tenantName: string; weight: number; maxQueued: number | null; revoked: boolean }[]
    >`
      with key as (
        select k.id, k."revokedAt", k."lastUsedAt", t.id as "tenantId", t.name as "tenantName", t.weight, t."maxQueued"
        from api_keys k join tenants t on t.id = k."tenantId"
        where k."keyHash" = ${hashApiKey(key)}
      ), touched as (
        update api_keys set "lastUsedAt" = now() at time zone 'utc'
        where id in (select id from key where "revokedAt" is null
                     and ("lastUsedAt" is null or "lastUsedAt" < now() at time zone 'utc' - ${`${LAST_USED_RESOLUTION_S} seconds`}::interval))
        returning id
      )
      select "tenantId"::text as "tenantId", "tenantName", weight, "maxQueued", "revokedAt" is not null as revoked from key`;
    const row = rows[0];
    return row && !row.revoked
      ? { id: row.tenantId, name: row.tenantName, weight: row.weight, maxQueued: row.maxQueued }
      : null;
  }

  /** The tenant's keys, oldest first; null when no tenant has that name. */
  async listKeys(tenantName: string): Promise<{ tenant: Tenant; keys: ApiKeyInfo[] } | null> {
    const row = await this.prisma.tenant.findUnique({
      where: { name: tenantName },
      select: {
        ...TENANT_SELECT,
        apiKeys: {
          orderBy: [{ createdAt: "asc" }, { id: "asc" }],
          select: { id: true, prefix: true, name: true, createdAt: true, lastUsedAt: true, revokedAt: true },
        },
      },
    });
    if (!row) return null;
    const { apiKeys, ...tenant } = row;
    return { tenant, keys: apiKeys };
  }

  /** Sets revokedAt once (a second call keeps the first time); null for an unknown id. */
  async revokeKey(keyId: string): Promise<RevokedKey | null> {
    if (!UUID_PATTERN.test(keyId)) return null;
    const { count } = await this.prisma.apiKey.updateMany({
      where: { id: keyId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    const row = await this.prisma.apiKey.findUnique({
      where: { id: keyId },
      select: { keyHash: true, revokedAt: true, tenant: { select: TENANT_SELECT } },
    });
    if (!row?.revokedAt) return null;
    return { keyId, keyHash: row.keyHash, tenant: row.tenant, revokedAt: row.revokedAt, alreadyRevoked: count === 0 };
  }

  /** The tenant named so, with its fair-share weight and quota; null when there is none. */
  async find(tenantName: string): Promise<Tenant | null> {
    return this.prisma.tenant.findUnique({ where: { name: tenantName }, select: TENANT_SELECT });
  }

  /**
   * Changes the tenant's weight and quota (`inferline tenants set`); null for an unknown tenant.
   * API processes see the change when their auth cache reads the key again (within 30 s).
   */
  async updateSettings(tenantName: string, settings: TenantSettings): Promise<Tenant | null> {
    const { count } = await this.prisma.tenant.updateMany({ where: { name: tenantName }, data: settings });
    return count === 0 ? null : this.find(tenantName);
  }

  /** The tenant's webhook signing secret; null for an unknown tenant. */
  async webhookSecret(tenantId: string): Promise<WebhookSecret | null> {
    const { rows } = await this.pool.query<WebhookSecret>(
      `select t."webhookSecret" as secret, ${PREVIOUS_EXPIRES_AT} as "previousExpiresAt"
       from tenants t where t.id = $1`,
      [tenantId],
    );
    return rows[0] ?? null;
  }

  /**
   * A new signing secret; the current one joins the previous ones and keeps signing (one more
   * signature in the same header) for `windowSeconds`, while each earlier one keeps its own
   * expiry: rotating twice inside a window drops no secret early. Previous secrets past their
   * expiry are dropped, and the oldest past MAX_PREVIOUS_WEBHOOK_SECRETS. Null for an unknown tenant.
   */
  async rotateWebhookSecret(tenantId: string, windowSeconds: number): Promise<WebhookSecret | null> {
    const { rows } = await this.pool.query<WebhookSecret>(
      `update tenants t set "webhookSecret" = $2, "previousWebhookSecrets" = (
         select coalesce(jsonb_agg(p order by (p->>'expiresAt')::timestamptz desc), '[]'::jsonb) from (
           select p from (
             select p from jsonb_array_elements(t."previousWebhookSecrets") as p
             union all
             select jsonb_build_object('secret', t."webhookSecret", 'expiresAt', now() + make_interval(secs => $3::double precision))
           ) as all_secrets(p)
           where (p->>'expiresAt')::timestamptz > now() order by (p->>'expiresAt')::timestamptz desc limit $4
         ) as kept(p))
       where t.id = $1
       returning t."webhookSecret" as secret, ${PREVIOUS_EXPIRES_AT} as "previousExpiresAt"`,
      [tenantId, newWebhookSecret(), windowSeconds, MAX_PREVIOUS_WEBHOOK_SECRETS],
    );
    return rows[0] ?? null;
  }
}

/** What the API's webhook-secret routes read and rotate. */
export type WebhookSecretStore = Pick<TenantStore, "webhookSecret" | "rotateWebhookSecret">;

/** What key authentication reads (the API's auth middleware). */
export type KeyLookup = Pick<TenantStore, "authenticate">;
