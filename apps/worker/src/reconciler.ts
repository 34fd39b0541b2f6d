import type { Logger } from "pino";
import type { Database } from "@inferline/db";
import type { Dispatcher } from "@inferline/queue";
import type { JobPriority } from "@inferline/contracts";

interface Orphan {
  dispatchId: string;
  model: string;
  version: string;
  priority: JobPriority;
  ids: string[];
}

/**
 * PostgreSQL is the record and Redis only transport: when Redis loses data (a restart without
 * persistence), jobs stay queued in the database with no queue entry. This re-adds the entries
 * of such jobs, under their original dispatch id so that a live entry is never duplicated.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly db: Database,
    private readonly dispatcher: Dispatcher,
    private readonly models: string[],
    private readonly options: { intervalMs: number; afterMs: number; logger: Logger },
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.runOnce().catch((err: Error) => this.options.logger.warn({ err: err.message }, "reconcile failed")), this.options.intervalMs);
    this.timer.unref();
  }

  /** One pass; returns how many jobs were re-enqueued. */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<number> {
    const { rows } = await this.db.pool.query<Orphan>(
      `select "dispatchId", model, version, priority, array_agg(id) as ids from jobs
       where status in ('queued', 'running') and "dispatchId" is not null and model = any($1::text[])
         and "createdAt" < now() - make_interval(secs => $2::double precision / 1000)
       group by "dispatchId", model, version, priority limit 1000`,
      [this.models, this.options.afterMs],
    );
    let requeued = 0;
    for (const orphan of rows) {
      const entry = await this.dispatcher.queue(orphan.model).getJob(orphan.dispatchId);
      const state = entry ? await entry.getState() : "missing";
      if (state !== "missing" && state !== "failed" && state !== "unknown") continue;
      if (entry) await entry.remove().catch(() => {});
      await this.dispatcher.enqueue([{ dispatchId: orphan.dispatchId, model: orphan.model, version: orphan.version, priority: orphan.priority, jobIds: orphan.ids }]);
      requeued += orphan.ids.length;
    }
    if (requeued > 0) this.options.logger.warn({ jobs: requeued }, "re-enqueued jobs that Redis had lost");
    return requeued;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}
