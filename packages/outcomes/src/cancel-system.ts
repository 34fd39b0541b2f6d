import { isUuid, parseBatchItemId } from "@inferline/contracts";
import type { FinishedJob, Queryable, ReleasedFollowers } from "@inferline/db";
import { jobsEnded, leadersToRelease } from "./decisions.ts";
import type { EventSystem } from "./event-system.ts";
import type { Committed, EndedWork, OutcomeResources } from "./resources.ts";

/**
 * Work that ends without a run's outcome: jobs and batch items canceled by their tenant, and
 * (for DeadlineSystem) jobs a statement ended, canceled or expired. What ends comes off its queue
 * entry's count, and the followers of a single flight it led are released to run on their own.
 */
export class CancelSystem {
  constructor(
    private readonly r: Pick<OutcomeResources, "db" | "jobs" | "chunks" | "batches" | "dispatches">,
    private readonly events: EventSystem,
  ) {}

  /** See OutcomeSystem.cancelJob. */
  async cancelJob(tenantId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const item = parseBatchItemId(id);
    const committed = await this.r.db.transaction(async (client): Promise<Committed | null> => {
      const job = await this.r.jobs.cancel(tenantId, id, client);
      if (job) {
        const emptied = await this.r.dispatches.takeOff([job.dispatchId], client);
        const events = await this.events.jobEvents([job], client);
        return {
          channels: [id],
          events,
          released: await this.releaseFollowers([job], client),
          emptied,
          ended: jobsEnded([job]),
        };
      }
      const done = item && (await this.r.chunks.cancelItem(tenantId, item.batchId, item.index, client));
      if (!item || !done) return null;
      // Long-polls on an item listen on its batch's id.
      return {
        channels: [item.batchId],
        events: await this.events.batchCompleted(done.settlement, client),
        emptied: done.emptied,
      };
    });
    if (!committed) return false;
    await this.events.afterCommit(committed);
    return true;
  }

  /** See OutcomeSystem.cancelBatch. */
  async cancelBatch(batchId: string): Promise<boolean> {
    const committed = await this.r.db.transaction(async (client): Promise<Committed | null> => {
      const done = await this.r.batches.cancel(batchId, client);
      // Wakes long-polls on the batch and on its items (which listen on the batch id).
      if (!done) return null;
      const ended: EndedWork[] = [{ kind: "item", model: done.model, status: "canceled", count: done.canceled }];
      return {
        channels: [batchId],
        events: await this.events.batchCompleted(done.settlement, client),
        emptied: done.emptied,
        ended,
      };
    });
    if (!committed) return false;
    await this.events.afterCommit(committed);
    return true;
  }

  /**
   * Jobs a statement ended (expired or canceled) with their events, taken off their queue
   * entries' counts, in one transaction; then wakes their waiters and enqueues the deliveries.
   */
  async endJobs(end: (client: Queryable) => Promise<FinishedJob[]>): Promise<FinishedJob[]> {
    const { finished, events, released, emptied } = await this.r.db.transaction(async (client) => {
      const finished = await end(client);
      const entries = finished.map((f) => f.dispatchId);
      const emptied = await this.r.dispatches.takeOff(entries, client);
      return {
        finished,
        events: await this.events.jobEvents(finished, client),
        released: await this.releaseFollowers(finished, client),
        emptied,
      };
    });
    if (finished.length > 0)
      await this.events.afterCommit({
        channels: finished.map((f) => f.id),
        events,
        released,
        emptied,
        ended: jobsEnded(finished),
      });
    return finished;
  }

  /** Followers of jobs that just ended without a run's outcome (canceled, expired), released onto queue entries in the caller's transaction. */
  private releaseFollowers(ended: FinishedJob[], client: Queryable): Promise<ReleasedFollowers[]> {
    return this.r.jobs.releaseFollowers(leadersToRelease(ended), undefined, client);
  }
}
