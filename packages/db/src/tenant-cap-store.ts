import type pg from "pg";

/** The model name a cap over every model of a tenant is stored under (no model is named so). */
export const ALL_MODELS = "*";

/** One concurrency cap: at most `maxRunning` of the tenant's jobs and batch items run at once on `model` (ALL_MODELS: over every model). */
export interface TenantCap {
  tenantId: string;
  model: string;
  maxRunning: number;
}

/**
 * The `tenant_caps` table: per-tenant concurrency caps, set by `inferline tenants set --max-running`,
 * read by workers (every cap at once, a few seconds old at most) and by the API's queue route.
 */
export class TenantCapStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Sets (or, with null, clears) the cap of the tenant named `tenantName` on `model` (ALL_MODELS:
   * over every model). Returns the tenant's id, or null for an unknown tenant.
   */
  async set(tenantName: string, model: string, maxRunning: number | null): Promise<string | null> {
    const { rows } =
      maxRunning === null
        ? await this.pool.query<{ id: string }>(
            `with t as (select id from tenants where name = $1), gone as (delete from tenant_caps c using t where c."tenantId" = t.id and c.model = $2)
             select id from t`,
            [tenantName, model],
          )
        : await this.pool.query<{ id: string }>(
            `insert into tenant_caps ("tenantId", model, "maxRunning") select id, $2, $3 from tenants where name = $1
             on conflict ("tenantId", model) do update set "maxRunning" = excluded."maxRunning"
             returning "tenantId" as id`,
            [tenantName, model, maxRunning],
          );
    return rows[0]?.id ?? null;
  }

  /** The tenant's caps, the one over every model first, then by model name. */
  async ofTenant(tenantId: string): Promise<TenantCap[]> {
    const { rows } = await this.pool.query<TenantCap>(
      `select "tenantId"::text as "tenantId", model, "maxRunning" from tenant_caps where "tenantId" = $1 order by model <> $2, model`,
      [tenantId, ALL_MODELS],
    );
    return rows;
  }

  /** Every cap of every tenant: what a worker caches (one row per cap set, so a small table). */
  async all(): Promise<TenantCap[]> {
    const { rows } = await this.pool.query<TenantCap>(
      `select "tenantId"::text as "tenantId", model, "maxRunning" from tenant_caps`,
    );
    return rows;
  }
}
