import type { Logger } from "pino";
import type { Database } from "@inferline/db";
import type { Dispatcher } from "@inferline/queue";
import type { JobPriority } from "@inferline/contracts";
import { PeriodicPass } from "./periodic-pass.ts";

interface PendingEntry {
  id: string;
  jobIds: string[];
  batchChunk: boolean;
  jobs: number;
  model: string;
  version: string;
  priority: JobPriority;
}

/**
 * PostgreSQL is the record and Redis only transport: when Redis loses data (a restart without
 * persistence), jobs stay queued in the database with no queue entry. This re-adds the entries
 * of such jobs, under their original dispatch id so that a live entry is never duplicated.
 */
export class Reconciler {
  private readonly periodic: PeriodicPass<number>;

  constructor(
    private readonly db: Database,
    private readonly dispatcher: Dispatcher,
    private readonly models: string[],
    private readonly options: { intervalMs: number; afterMs: number; logger: Logger },
  ) {
    this.periodic = new PeriodicPass(() => this.pass(), { intervalMs: options.intervalMs, logger: options.logger, failure: "reconcile failed" });
  }

  start(): void {
    this.periodic.start();
  }

  /** One pass; returns how many jobs were re-enqueued. */
  runOnce(): Promise<number> {
    return this.periodic.runOnce();
  }

  private async pass(): Promise<number> {
    const { rows } = await this.db.pool.query<PendingEntry>(
      `select id, model, version, priority, "jobIds", "batchChunk", jobs from dispatches
       where model = any($1::text[]) and "createdAt" < now() - make_interval(secs => $2::double precision / 1000)
       order by "createdAt" limit 1000`,
      [this.models, this.options.afterMs],
    );
    let requeued = 0;
    for (const pending of rows) {
      const entry = await this.dispatcher.queue(pending.model).getJob(pending.id);
      const state = entry ? await entry.getState() : "unknown";
      if (state !== "failed" && state !== "unknown" && state !== "completed") continue;
      const { left, started } = await this.pendingItems(pending);
      if (left.length === 0) {
        await this.db.pool.query(`delete from dispatches where id = $1`, [pending.id]);
        continue;
      }
      if (entry) await entry.remove().catch(() => {});
      const jobIds = pending.batchChunk ? [] : left;
      // Started work whose entry is gone may be what killed its worker: `resumed` has it run alone.
      await this.dispatcher.enqueue([{ dispatchId: pending.id, model: pending.model, version: pending.version, priority: pending.priority, jobIds, batchChunk: pending.batchChunk, resumed: started }]);
      requeued += pending.batchChunk ? pending.jobs : left.length;
    }
    if (requeued > 0) this.options.logger.warn({ jobs: requeued }, "re-enqueued jobs that Redis had lost");
    return requeued;
  }

  /**
   * The entry's jobs not yet terminal (for a batch chunk, the chunk itself while unfinished), and
   * whether any of them had been started by a worker.
   */
  private async pendingItems(pending: PendingEntry): Promise<{ left: string[]; started: boolean }> {
    const { rows } = pending.batchChunk
      ? await this.db.pool.query<{ id: string; started: boolean }>(`select id, "startedAt" is not null as started from batch_chunks where id = $1 and "completedAt" is null`, [pending.id])
      : await this.db.pool.query<{ id: string; started: boolean }>(`select id, status = 'running' as started from jobs where id = any($1::uuid[]) and status in ('queued', 'running')`, [pending.jobIds]);
    return { left: rows.map((r) => r.id), started: rows.some((r) => r.started) };
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
