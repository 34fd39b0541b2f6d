import type { BatchSettlement, FinishedJob, Queryable, RecordedEvent } from "@inferline/db";
import { followUp } from "./decisions.ts";
import { recordBatchCompleted, recordJobEvents } from "./outcome-events.ts";
import type { Committed, OutcomeHooks, OutcomeResources } from "./resources.ts";

/**
 * Webhook events and what follows a commit. Inside a transaction it records the events of what
 * the transaction ended (so a crash cannot keep an outcome and lose its event); after commit it
 * reports what ended, removes emptied queue entries, enqueues released followers, wakes the
 * waiters and enqueues the deliveries. Redis refusing any of that is logged, never thrown: the
 * outcome is committed, long-polls look again on their own, the webhook sweep enqueues pending
 * events, and the reconciler re-adds queue entries.
 */
export class EventSystem {
  constructor(
    private readonly r: Pick<OutcomeResources, "events" | "batches" | "notifier" | "deliveries" | "entries" | "logger">,
    private readonly hooks: Pick<OutcomeHooks, "ended"> = {},
  ) {}

  /** The `job.<status>` events of jobs that ended, recorded in the caller's transaction (see recordJobEvents). */
  jobEvents(finished: FinishedJob[], client?: Queryable): Promise<RecordedEvent[]> {
    return recordJobEvents(this.r.events, finished, client);
  }

  /** `batch.completed`, recorded in the caller's transaction when its settlement completed the batch. */
  async batchCompleted(settlement: BatchSettlement | null, client: Queryable): Promise<RecordedEvent[]> {
    return settlement?.completed ? recordBatchCompleted(this.r.events, this.r.batches, settlement.batchId, client) : [];
  }

  /** `batch.completed` of a batch known to have completed (see BatchDraft.commit). */
  batchCompletedById(batchId: string, client: Queryable): Promise<RecordedEvent[]> {
    return recordBatchCompleted(this.r.events, this.r.batches, batchId, client);
  }

  /**
   * One notification for the write, then the deliveries, carrying each event's tenant so the
   * webhook worker need not look it up.
   */
  async afterCommit(committed: Committed): Promise<void> {
    const { channels, views, events } = committed;
    const next = followUp(committed);
    if (next.ended.length > 0) this.hooks.ended?.(next.ended);
    if (next.remove.length > 0) {
      // Best effort: an entry left behind is taken by a worker, whose claim finds nothing to run.
      const warn = (err: Error) =>
        this.r.logger.warn({ err: err.message }, "removing emptied queue entries failed; a worker skips them");
      await this.r.entries?.remove(next.remove).catch(warn);
    }
    if (next.enqueue.length > 0) {
      await this.r.entries
        ?.enqueue(next.enqueue)
        .catch((err: Error) =>
          this.r.logger.warn({ err: err.message }, "enqueueing released followers failed; the reconciler will"),
        );
    }
    if (channels.length > 0)
      await this.r.notifier
        .publish(channels, views)
        .catch((err: Error) =>
          this.r.logger.warn({ err: err.message }, "finished notification failed; long-polls look again on their own"),
        );
    if (events.length === 0) return;
    await this.r.deliveries
      .enqueue(events)
      .catch((err: Error) => this.r.logger.warn({ err: err.message }, "webhook enqueue failed; the sweep will retry"));
  }
}
