import { isRowFault, type JobStore, type NewJob } from "@inferline/db";
import type { Dispatcher, DispatchGroup } from "@inferline/queue";
import type { Logger } from "pino";

interface Waiting {
  job: NewJob;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for submits: jobs that arrive while a write is in flight are inserted with one
 * statement and enqueued with one addBulk, so concurrent clients share round trips. A lone
 * request waits for no timer. Each caller's promise resolves only once its job is in
 * PostgreSQL; if Redis then refuses the queue entry, the job stays queued in the database and
 * the workers' reconciler enqueues it, so an accepted job is never lost.
 */
export class SubmitWriter {
  private waiting: Waiting[] = [];
  private writing = false;

  constructor(
    private readonly store: JobStore,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
  ) {}

  submit(job: NewJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Inserts one job on its own (so a constraint violation reaches this caller only), then enqueues it. */
  async submitOne(job: NewJob): Promise<void> {
    const plan = this.plan([job]);
    await this.store.insertMany([job]);
    await this.dispatcher.enqueue(plan).catch((err: Error) => this.logger.warn({ err: err.message }, "enqueue failed; the reconciler will enqueue this job"));
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const group = this.waiting;
      this.waiting = [];
      const plan = this.plan(group.map((w) => w.job));
      let stored: Waiting[];
      try {
        await this.store.insertMany(group.map((w) => w.job));
        stored = group;
      } catch (err) {
        if (group.length === 1 || !isRowFault(err)) {
          for (const w of group) w.reject(err);
          continue;
        }
        stored = await this.insertOneByOne(group);
      }
      const ids = new Set(stored.map((w) => w.job.id));
      const entries = plan.map((g) => ({ ...g, jobIds: g.jobIds.filter((id) => ids.has(id)) })).filter((g) => g.jobIds.length > 0);
      await this.dispatcher.enqueue(entries).catch((err: Error) => this.logger.warn({ err: err.message, jobs: stored.length }, "enqueue failed; the reconciler will enqueue these jobs"));
      for (const w of stored) w.resolve();
    }
    this.writing = false;
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

  /** Groups jobs by model, version and priority, and stamps each with its queue entry's id. */
  private plan(jobs: NewJob[]): DispatchGroup[] {
    const byKey = new Map<string, NewJob[]>();
    for (const job of jobs) {
      const key = `${job.model}\u0000${job.version}\u0000${job.priority}`;
      const list = byKey.get(key);
      if (list) list.push(job);
      else byKey.set(key, [job]);
    }
    const groups: DispatchGroup[] = [];
    for (const list of byKey.values()) {
      const { model, version, priority } = list[0]!;
      groups.push(...this.dispatcher.plan(model, version, priority, list));
    }
    return groups;
  }
}
