import type { Logger } from "pino";
import type { ReconcilerStore } from "@inferline/db";
import type { Dispatcher } from "@inferline/queue";
import { PeriodicPass } from "./periodic-pass.ts";

/**
 * PostgreSQL is the record and Redis only transport: when Redis loses data (a restart without
 * persistence), jobs stay queued in the database with no queue entry. This re-adds the entries
 * of such jobs, under their original dispatch id so that a live entry is never duplicated.
 */
export class Reconciler {
  private readonly periodic: PeriodicPass<number>;

  constructor(
    private readonly dispatches: ReconcilerStore,
    private readonly dispatcher: Dispatcher,
    private readonly models: string[],
    private readonly options: { intervalMs: number; afterMs: number; logger: Logger },
  ) {
    this.periodic = new PeriodicPass(() => this.pass(), {
      intervalMs: options.intervalMs,
      logger: options.logger,
      failure: "reconcile failed",
    });
  }

  start(): void {
    this.periodic.start();
  }

  /** One pass; returns how many jobs were re-enqueued. */
  runOnce(): Promise<number> {
    return this.periodic.runOnce();
  }

  private async pass(): Promise<number> {
    const rows = await this.dispatches.pendingEntries(this.models, this.options.afterMs);
    let requeued = 0;
    for (const pending of rows) {
      const entry = await this.dispatcher.queue(pending.model, pending.version).getJob(pending.id);
      const state = entry ? await entry.getState() : "unknown";
      if (state !== "failed" && state !== "unknown" && state !== "completed") continue;
      const { left, started } = await this.dispatches.pendingItems(pending);
      if (left.length === 0) {
        await this.dispatches.delete(pending.id);
        continue;
      }
      if (entry) await entry.remove().catch(() => {});
      const jobIds = pending.batchChunk ? [] : left;
      // Started work whose entry is gone may be what killed its worker: `resumed` has it run alone.
      await this.dispatcher.enqueue([
        {
          dispatchId: pending.id,
          model: pending.model,
          version: pending.version,
          priority: pending.priority,
          jobIds,
          batchChunk: pending.batchChunk,
          resumed: started,
        },
      ]);
      requeued += pending.batchChunk ? pending.jobs : left.length;
    }
    if (requeued > 0) this.options.logger.warn({ jobs: requeued }, "re-enqueued jobs that Redis had lost");
    return requeued;
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
