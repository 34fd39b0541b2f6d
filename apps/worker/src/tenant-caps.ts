import crypto from "node:crypto";
import { DelayedError, type Job as QueueEntry } from "bullmq";
import type { TenantCap } from "@inferline/db";
import {
  isRedisUnavailable,
  parseInferQueueName,
  tenantCapKey,
  type CapLease,
  type CapSlot,
  type DispatchPayload,
  type TenantLeases,
} from "@inferline/queue";

/** The model name of a cap over every model of a tenant (as `tenant_caps` stores it). */
const ALL_MODELS = "*";

export interface TenantCapsOptions {
  /** Queue prefix (the leases' keys live under it). */
  prefix: string;
  /** Caps are read again when older than this (TENANT_CAP_CACHE_MS). */
  cacheMs: number;
  /** A lease's life; renewed every third of it while the entry runs (TENANT_CAP_LEASE_MS). */
  leaseMs: number;
  /** An entry over its cap waits this long, plus up to as much again at random (TENANT_CAP_WAIT_MS). */
  waitMs: number;
}

export interface TenantCapsDeps {
  /** Every cap of every tenant (TenantCapStore.all). */
  readCaps: () => Promise<TenantCap[]>;
  /** Whose work an entry carries when its payload does not say (DispatchStore.tenantOf). */
  tenantOf: (entryId: string) => Promise<string | null>;
  leases: TenantLeases;
  /** Counts an entry that waited for its cap, by model (no tenant label: one series per model). */
  onWait: (model: string) => void;
  logger: { warn(obj: object, msg: string): void };
}

/** A lease held while an entry runs; `release` ends it (and its renewals). */
export interface HeldCap {
  release(): Promise<void>;
}

/**
 * Per-tenant concurrency caps, enforced when a worker takes an entry, before anything of it is
 * claimed: the entry takes a lease of its jobs' count (a batch chunk's: the whole cap) on each
 * cap that applies (the tenant's on this model, and its cap over every model), renewed while it
 * runs and released when it ends; a lease whose worker died lapses after leaseMs. An entry that
 * does not fit goes back to the delayed set for a short while (BullMQ counts no attempt, and the
 * slot is free at once for other tenants' entries). An entry larger than a cap counts as the
 * whole cap, so it runs when nothing else of its tenant does under that cap (it never waits forever).
 *
 * Redis unreachable (or refusing the lease's script): the entry runs without a lease (fails open).
 * It was already taken from Redis, and moving it back would need Redis too; throwing would spend
 * an attempt of work that did nothing wrong. Caps unreadable (PostgreSQL away): the last ones read
 * stay in force.
 */
export class TenantCaps {
  private caps = new Map<string, number>();
  private any = false;
  private readAt = -Infinity;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly deps: TenantCapsDeps,
    private readonly options: TenantCapsOptions,
  ) {}

  /**
   * Admits the entry under its tenant's caps: a lease to release when its run ends, or undefined
   * when no cap applies. Over a cap: the entry is moved to the delayed set and this throws
   * DelayedError (BullMQ then leaves it there, counting no attempt).
   */
  async admit(entry: QueueEntry<DispatchPayload>, token: string | undefined): Promise<HeldCap | undefined> {
    await this.fresh();
    if (!this.any) return undefined;
    const model = parseInferQueueName(entry.queueName).model;
    const tenantId =
      entry.data.tenantId ?? entry.data.carried?.tenantId ?? (await this.deps.tenantOf(entry.id!).catch(() => null));
    if (!tenantId) return undefined;
    const slots: CapSlot[] = [];
    for (const scope of [model, ALL_MODELS]) {
      const maxRunning = this.caps.get(capId(tenantId, scope));
      if (maxRunning !== undefined) slots.push({ key: tenantCapKey(this.options.prefix, tenantId, scope), maxRunning });
    }
    if (slots.length === 0) return undefined;
    // A batch chunk's items are not known before its claim: it counts as the whole cap.
    const weight = entry.data.batchChunk ? Number.MAX_SAFE_INTEGER : Math.max(1, entry.data.jobIds.length);
    let lease: CapLease | null;
    try {
      lease = await this.deps.leases.acquire(`${entry.id}:${crypto.randomUUID().slice(0, 8)}`, slots, weight);
    } catch (err) {
      this.deps.logger.warn(
        { err: (err as Error).message, unreachable: isRedisUnavailable(err) },
        "taking a lease on a tenant's concurrency cap failed: the entry runs without it",
      );
      return undefined;
    }
    if (!lease) {
      this.deps.onWait(model);
      await entry.moveToDelayed(
        Date.now() + this.options.waitMs + Math.round(Math.random() * this.options.waitMs),
        token,
      );
      throw new DelayedError();
    }
    return this.hold(lease);
  }

  private hold(lease: CapLease): HeldCap {
    const renewal = setInterval(
      () => void this.deps.leases.renew(lease).catch(() => {}),
      Math.max(100, Math.floor(this.options.leaseMs / 3)),
    );
    renewal.unref();
    return {
      release: async () => {
        clearInterval(renewal);
        // Best effort: a lease that cannot be released lapses by itself.
        await this.deps.leases.release(lease).catch(() => {});
      },
    };
  }

  /**
   * The caps, read again when older than cacheMs: the first read is waited for; a later one runs
   * beside the entries, which meanwhile see the caps last read (a claim never waits for PostgreSQL
   * on their account). Concurrent callers share one read.
   */
  private async fresh(): Promise<void> {
    if (performance.now() - this.readAt < this.options.cacheMs) return;
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    if (this.readAt === -Infinity) await this.reading;
  }

  private async read(): Promise<void> {
    try {
      const rows = await this.deps.readCaps();
      this.caps = new Map(rows.map((r) => [capId(r.tenantId, r.model), r.maxRunning]));
      this.any = rows.length > 0;
    } catch (err) {
      // Tried again after cacheMs, not on every entry: each try may wait for a connect timeout.
      this.deps.logger.warn(
        { err: (err as Error).message },
        "reading tenants' concurrency caps failed; the last ones read stay in force",
      );
    }
    this.readAt = performance.now();
  }
}

const capId = (tenantId: string, model: string): string => `${tenantId}\u0000${model}`;
