import { LRUCache } from "lru-cache";
import { InferlineError } from "@inferline/contracts";
import type { Tenant } from "@inferline/db";

/** Seconds a client is told to wait when its tenant is at its quota. */
const RETRY_AFTER_S = 5;

/** 429 `quota_exceeded`: the tenant has as many jobs and batch items queued as its quota allows. */
export class QuotaExceededError extends InferlineError {
  readonly retryAfterSeconds = RETRY_AFTER_S;
  constructor(message: string) {
    super("quota_exceeded", message, { status: 429, retriable: true });
  }
}

export interface TenantQuotaGuardOptions {
  /** DEFAULT_TENANT_MAX_QUEUED: the quota of a tenant without one of its own; undefined: no limit. */
  defaultMaxQueued?: number;
  /** How long a reading of a tenant's queued work is used. Default 1000 ms. */
  maxAgeMs?: number;
  /** Tenants whose reading is kept at once. Default 10,000. */
  maxTenants?: number;
}

interface Reading {
  queued: number;
  at: number;
}

/**
 * The per-tenant quota (`maxQueued`, else DEFAULT_TENANT_MAX_QUEUED): jobs and batch items the
 * tenant has queued (not started), over every model. As QueueDepthGuard does for the model's
 * depth, a tenant's queued work is read from PostgreSQL at most once per `maxAgeMs` (concurrent
 * submits share one reading), and what this process queues in between counts itself in, so a
 * burst cannot overshoot the quota between readings: a single job counts as soon as it is
 * admitted (a submit that then fails counts until the next reading), a batch once it is
 * committed. Tenants without a quota cost nothing.
 */
export class TenantQuotaGuard {
  private readonly readings: LRUCache<string, Reading>;
  private readonly reading = new Map<string, Promise<number>>();
  private readonly maxAgeMs: number;

  constructor(
    private readonly queuedOf: (tenantId: string) => Promise<number>,
    private readonly options: TenantQuotaGuardOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.readings = new LRUCache({ max: options.maxTenants ?? 10_000 });
  }

  /** The tenant's quota; undefined when it has none. */
  limitOf(tenant: Pick<Tenant, "maxQueued">): number | undefined {
    return tenant.maxQueued ?? this.options.defaultMaxQueued;
  }

  /**
   * Throws 429 `quota_exceeded` (Retry-After) when the tenant is at its quota already, or
   * `adding` more would take it past. `adding` 0 asks only the first (a batch whose size is not
   * known yet).
   */
  async assertRoom(tenant: Pick<Tenant, "id" | "name" | "maxQueued">, adding = 1): Promise<void> {
    await this.check(tenant, adding, false);
  }

  /** assertRoom for `adding` jobs about to be queued, counting them in at once (so concurrent submits cannot all pass on one reading). */
  async admit(tenant: Pick<Tenant, "id" | "name" | "maxQueued">, adding = 1): Promise<void> {
    await this.check(tenant, adding, true);
  }

  /**
   * admit without waiting: true once decided (it throws past the quota, and counts the jobs in
   * when admitted), false when the tenant's reading is too old to decide on (nothing counted).
   */
  admitNow(tenant: Pick<Tenant, "id" | "name" | "maxQueued">, adding = 1): boolean {
    const limit = this.limitOf(tenant);
    if (limit === undefined) return true;
    const reading = this.freshReading(tenant.id);
    if (!reading) return false;
    this.decide(tenant, limit, reading.queued, adding, true);
    return true;
  }

  /** Counts `n` jobs or items this process just queued for the tenant into its reading. */
  noteQueued(tenantId: string, n = 1): void {
    const cached = this.readings.get(tenantId);
    if (cached) cached.queued += n;
  }

  private async check(
    tenant: Pick<Tenant, "id" | "name" | "maxQueued">,
    adding: number,
    count: boolean,
  ): Promise<void> {
    const limit = this.limitOf(tenant);
    if (limit === undefined) return;
    const read = await this.queued(tenant.id);
    // From here on without an await: concurrent admissions see each other's counts.
    this.decide(tenant, limit, this.readings.get(tenant.id)?.queued ?? read, adding, count);
  }

  private decide(
    tenant: Pick<Tenant, "id" | "name">,
    limit: number,
    queued: number,
    adding: number,
    count: boolean,
  ): void {
    if (queued + adding > limit || queued >= limit) {
      const quota = `tenant ${tenant.name} has ${queued} jobs and batch items queued; its quota (maxQueued) is ${limit}`;
      if (queued >= limit) throw new QuotaExceededError(`${quota}; retry once some have started`);
      throw new QuotaExceededError(`${quota}; ${adding} more would exceed it; retry later or send fewer`);
    }
    if (count) this.noteQueued(tenant.id, adding);
  }

  /** The tenant's reading while it is under maxAgeMs old. */
  private freshReading(tenantId: string): Reading | undefined {
    const reading = this.readings.get(tenantId);
    return reading && Date.now() - reading.at < this.maxAgeMs ? reading : undefined;
  }

  private async queued(tenantId: string): Promise<number> {
    const fresh = this.freshReading(tenantId);
    if (fresh) return fresh.queued;
    let pending = this.reading.get(tenantId);
    if (!pending) {
      pending = this.queuedOf(tenantId)
        .then((queued) => {
          this.readings.set(tenantId, { queued, at: Date.now() });
          return queued;
        })
        .finally(() => this.reading.delete(tenantId));
      this.reading.set(tenantId, pending);
    }
    return pending;
  }
}
