import { isUuid, parseBatchItemId } from "@inferline/contracts";
import type {
  BatchChunkStore,
  BatchSettlement,
  BatchStore,
  ChunkItemOutcome,
  Database,
  FinishedChunk,
  FinishedJob,
  JobOutcome,
  JobStore,
  Queryable,
  RecordedEvent,
  WebhookEventRecorder,
} from "@inferline/db";
import type { FinishedNotifier } from "@inferline/queue";
import type { WebhookQueue } from "@inferline/webhooks";
import { recordBatchCompleted, recordJobEvents } from "./outcome-events.ts";
import { ResultWriter, type Written } from "./result-writer.ts";

/** Where a refused notification or enqueue is reported (a pino logger fits). */
export interface OutcomeLogger {
  warn(obj: object, msg?: string): void;
}

/** The shared resources every outcome runs on, each narrowed to what outcomes touch. */
export interface OutcomeResources {
  db: Pick<Database, "transaction">;
  jobs: Pick<JobStore, "finish" | "cancel">;
  chunks: Pick<BatchChunkStore, "finish" | "cancelItem">;
  batches: Pick<BatchStore, "cancel" | "eventSubject">;
  events: WebhookEventRecorder;
  /** Wakes long-polls: one message per write. */
  notifier: Pick<FinishedNotifier, "publish">;
  /** Enqueues webhook deliveries. */
  deliveries: Pick<WebhookQueue, "enqueue">;
  logger: OutcomeLogger;
}

export interface OutcomeHooks {
  /** Called after each committed result write with the jobs it finished (tests hang here). */
  onFinished?: (jobs: FinishedJob[]) => Promise<void>;
}

/** What a committed write leaves to do: the channels to wake (job ids, or a batch id) and the events to deliver. */
interface Committed {
  channels: string[];
  events: RecordedEvent[];
}

/**
 * The outcome path: every write that makes jobs or batch items terminal (results, failures,
 * cancels) goes through here. Each operation runs its statements and records its webhook events
 * in one transaction, so a crash cannot keep an outcome and lose its event; after commit it wakes
 * the waiters and enqueues the deliveries. Redis refusing either is logged, never thrown: the
 * outcome is committed, long-polls look again on their own, the webhook sweep enqueues pending
 * events, and the reconciler re-adds queue entries.
 */
export class OutcomeSystem {
  private readonly results: ResultWriter<RecordedEvent[]>;

  constructor(
    private readonly r: OutcomeResources,
    private readonly hooks: OutcomeHooks = {},
  ) {
    this.results = new ResultWriter(
      (outcomes, doneEntries) => this.writeJobs(outcomes, doneEntries),
      (written) => this.afterJobs(written),
    );
  }

  /**
   * Writes the outcomes of jobs, group-committed with other callers' (see ResultWriter): one
   * transaction per group carries the results, the queue entries they complete and their events.
   * `dispatchId` names the queue entry these are all the results of. Resolves with the jobs this
   * write moved to a terminal state (a job already terminal, e.g. canceled, keeps its state).
   */
  finishJobs(outcomes: JobOutcome[], dispatchId?: string): Promise<FinishedJob[]> {
    return this.results.write(outcomes, dispatchId);
  }

  /**
   * Writes a batch chunk's outcomes (index-aligned with its claim) on its own: one transaction
   * already carries up to 512 items, the batch's accounting and `batch.completed` when this
   * completes the batch.
   */
  async finishChunk(chunkId: string, outcomes: Array<ChunkItemOutcome | undefined>): Promise<FinishedChunk | null> {
    const { finished, events } = await this.r.db.transaction(async (client) => {
      const finished = await this.r.chunks.finish(chunkId, outcomes, client);
      return { finished, events: await this.batchCompletedEvents(finished?.settlement ?? null, client) };
    });
    // Long-polls on the batch and on its items listen on the batch id: one message per chunk.
    await this.afterCommit({ channels: finished && finished.finished > 0 ? [finished.batchId] : [], events });
    return finished;
  }

  /**
   * Cancels a queued or running job of the tenant. An id that is no such job but names a batch
   * item (see batchItemId) cancels that item through its chunk, in the same transaction. False
   * when nothing was canceled: terminal already, or not the tenant's.
   */
  async cancelJob(tenantId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const item = parseBatchItemId(id);
    const committed = await this.r.db.transaction(async (client): Promise<Committed | null> => {
      const job = await this.r.jobs.cancel(tenantId, id, client);
      if (job) return { channels: [id], events: await recordJobEvents(this.r.events, [job], client) };
      const done = item && (await this.r.chunks.cancelItem(tenantId, item.batchId, item.index, client));
      if (!item || !done) return null;
      // Long-polls on an item listen on its batch's id.
      return { channels: [item.batchId], events: await this.batchCompletedEvents(done.settlement, client) };
    });
    if (!committed) return false;
    await this.afterCommit(committed);
    return true;
  }

  /**
   * Cancels every item of the batch not yet terminal (the caller has checked that the batch is
   * the tenant's). False when the batch had completed already, seen under the batch's locks.
   */
  async cancelBatch(batchId: string): Promise<boolean> {
    const committed = await this.r.db.transaction(async (client): Promise<Committed | null> => {
      const done = await this.r.batches.cancel(batchId, client);
      // Wakes long-polls on the batch and on its items (which listen on the batch id).
      return done && { channels: [batchId], events: await this.batchCompletedEvents(done.settlement, client) };
    });
    if (!committed) return false;
    await this.afterCommit(committed);
    return true;
  }

  /** The ResultWriter's persist: one group's results, done queue entries and events, in one transaction. */
  private writeJobs(outcomes: JobOutcome[], doneEntries: string[]): Promise<Written<RecordedEvent[]>> {
    return this.r.db.transaction(async (client) => {
      const finished = await this.r.jobs.finish(outcomes, doneEntries, client);
      return { finished, recorded: await recordJobEvents(this.r.events, finished, client) };
    });
  }

  /** The ResultWriter's after: runs once per committed group. */
  private async afterJobs({ finished, recorded }: Written<RecordedEvent[]>): Promise<void> {
    await this.afterCommit({ channels: finished.map((f) => f.id), events: recorded });
    await this.hooks.onFinished?.(finished);
  }

  /** `batch.completed`, recorded in the caller's transaction when its settlement completed the batch. */
  private async batchCompletedEvents(settlement: BatchSettlement | null, client: Queryable): Promise<RecordedEvent[]> {
    return settlement?.completed ? recordBatchCompleted(this.r.events, this.r.batches, settlement.batchId, client) : [];
  }

  /**
   * One notification for the write, then the deliveries, carrying each event's tenant so the
   * webhook worker need not look it up.
   */
  private async afterCommit({ channels, events }: Committed): Promise<void> {
    await this.r.notifier.publish(channels).catch((err: Error) => this.r.logger.warn({ err: err.message }, "finished notification failed; long-polls look again on their own"));
    if (events.length === 0) return;
    await this.r.deliveries.enqueue(events).catch((err: Error) => this.r.logger.warn({ err: err.message }, "webhook enqueue failed; the sweep will retry"));
  }
}
