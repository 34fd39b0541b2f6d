import { isRowFault, type JobStore, type NewJob } from "@inferline/db";
import type { Dispatcher, DispatchGroup } from "@inferline/queue";
import type { Logger } from "pino";
import type { TenantBacklog } from "./tenant-backlog.ts";

interface Waiting {
  job: NewJob;
  /** The tenant's fair-share weight (Tenant.weight). */
  weight: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for submits: jobs that arrive while a write is in flight are inserted with one
 * statement and enqueued with one addBulk, so concurrent clients share round trips. A lone
 * request waits for no timer. Each caller's promise resolves only once its job is in
 * PostgreSQL; if Redis then refuses the queue entry, the job stays queued in the database and
 * the workers' reconciler enqueues it, so an accepted job is never lost.
 *
 * Fair share: a queue entry carries one tenant's jobs; its BullMQ priority comes from its rank
 * (the tenant's queued work of that model and class ahead of it, see TenantBacklog) and the
 * tenant's weight, so tenants take turns on the model's workers (the queue package's
 * entryPriority).
 */
export class SubmitWriter {
  private waiting: Waiting[] = [];
  private writing = false;

  constructor(
    private readonly store: JobStore,
    private readonly dispatcher: Dispatcher,
    private readonly backlog: Pick<TenantBacklog, "rank">,
    private readonly logger: Logger,
  ) {}

  /** Stores and enqueues the job with the others that arrive meanwhile; `weight` is its tenant's. */
  submit(job: NewJob, weight = 1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, weight, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Inserts one job on its own (so a constraint violation reaches this caller only), then enqueues it. */
  async submitOne(job: NewJob, weight = 1): Promise<void> {
    const plan = this.plan([{ job, weight }]);
    const ranking = this.ranked(plan);
    await this.store.insertMany([job]);
    await this.dispatcher.enqueue(await ranking).catch((err: Error) => this.logger.warn({ err: err.message }, "enqueue failed; the reconciler will enqueue this job"));
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const group = this.waiting;
      this.waiting = [];
      let stored: Waiting[];
      try {
        const plan = this.plan(group);
        // Ranked while the insert runs (the reading leaves this write's entries out); never rejects.
        const ranking = this.ranked(plan);
        stored = await this.insert(group);
        const ids = new Set(stored.map((w) => w.job.id));
        const entries = (await ranking).map((g) => ({ ...g, jobIds: g.jobIds.filter((id) => ids.has(id)) })).filter((g) => g.jobIds.length > 0);
        await this.dispatcher.enqueue(entries).catch((err: Error) => this.logger.warn({ err: err.message, jobs: stored.length }, "enqueue failed; the reconciler will enqueue these jobs"));
      } catch (err) {
        for (const w of group) w.reject(err);
        continue;
      }
      for (const w of stored) w.resolve();
    }
    this.writing = false;
  }

  /** One statement for the group; after a row fault, each job on its own (see insertOneByOne). Returns the stored. */
  private async insert(group: Waiting[]): Promise<Waiting[]> {
    try {
      await this.store.insertMany(group.map((w) => w.job));
      return group;
    } catch (err) {
      if (group.length === 1 || !isRowFault(err)) throw err;
      return this.insertOneByOne(group);
    }
  }

  /**
   * After a group insert failed on some row's data: each job on its own, so only the guilty
   * request fails (validation should have refused it; this is the safety net). Returns the stored.
   */
  private async insertOneByOne(group: Waiting[]): Promise<Waiting[]> {
    const stored: Waiting[] = [];
    for (const w of group) {
      try {
        await this.store.insertMany([w.job]);
        stored.push(w);
      } catch (err) {
        w.reject(err);
      }
    }
    return stored;
  }

  /**
   * Groups jobs by model, version, priority and tenant (an entry carries one tenant's jobs, for
   * fair share and quotas), and stamps each with its queue entry's id.
   */
  private plan(waiting: Array<Pick<Waiting, "job" | "weight">>): DispatchGroup[] {
    const byKey = new Map<string, Array<Pick<Waiting, "job" | "weight">>>();
    for (const w of waiting) {
      const { model, version, priority, tenantId } = w.job;
      const key = `${model}\u0000${version}\u0000${priority}\u0000${tenantId}`;
      const list = byKey.get(key);
      if (list) list.push(w);
      else byKey.set(key, [w]);
    }
    const groups: DispatchGroup[] = [];
    for (const list of byKey.values()) {
      const { model, version, priority, tenantId } = list[0]!.job;
      // The last submit's weight: a change reaches the API's auth cache key by key.
      const weight = list[list.length - 1]!.weight;
      for (const g of this.dispatcher.plan(
        model,
        version,
        priority,
        list.map((w) => w.job),
      ))
        groups.push({ ...g, tenantId, weight });
    }
    return groups;
  }

  /** The entries with their fair-share ranks. */
  private async ranked(groups: DispatchGroup[]): Promise<DispatchGroup[]> {
    const ranks = await this.backlog.rank(groups.map((g) => ({ id: g.dispatchId, tenantId: g.tenantId!, model: g.model, priority: g.priority, jobs: g.jobIds.length })));
    return groups.map((g, i) => ({ ...g, rank: ranks[i] }));
  }
}
