import { isUuid, parseBatchItemId } from "@inferline/contracts";
import type {
  BatchChunkStore,
  BatchSettlement,
  BatchStore,
  ChunkItemOutcome,
  ClaimedChunk,
  ClaimedJob,
  Database,
  ExpiredChunks,
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
  jobs: Pick<JobStore, "finish" | "cancel" | "claim" | "endOverdue" | "expireOverdue" | "cancelOverdue">;
  chunks: Pick<BatchChunkStore, "finish" | "cancelItem" | "claim" | "overdue" | "expire">;
  batches: Pick<BatchStore, "cancel" | "eventSubject" | "dueForCancel">;
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

/** One page of a deadline sweep: rows it took (a full page means there may be more) and jobs or items it ended. */
export interface SweptPage {
  due: number;
  ended: number;
}

/** What a committed write leaves to do: the channels to wake (job ids, or a batch id) and the events to deliver. */
interface Committed {
  channels: string[];
  events: RecordedEvent[];
}

/**
 * The outcome path: every write that makes jobs or batch items terminal (results, failures,
 * cancels, expiries, and the claims that end overdue work instead of running it) goes through
 * here. Each operation runs its statements and records its webhook events in one transaction,
 * so a crash cannot keep an outcome and lose its event; after commit it wakes
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

  /**
   * Claims jobs of queue entry `entryId` for a run (see JobStore.claim). The jobs it skipped for a
   * passed deadline end here, with their events, in a transaction of their own (only when there
   * are any): such a job is never run. Should that transaction fail, the claim stands and the
   * deadline sweep, or the entry's next claim, ends them.
   */
  async claimJobs(ids: string[], entryId?: string): Promise<ClaimedJob[]> {
    const { claimed, overdue } = await this.r.jobs.claim(ids, entryId);
    if (overdue.length > 0) {
      await this.endJobs((client) => this.r.jobs.endOverdue(overdue, client)).catch((err: Error) =>
        this.r.logger.warn({ err: err.message }, "ending overdue jobs at claim failed; the deadline sweep ends them"),
      );
    }
    return claimed;
  }

  /**
   * Claims a batch chunk for a run (see BatchChunkStore.claim). A chunk it returned null for may
   * be overdue: not started by its batch's queue deadline (its items expire, never run), or its
   * batch past its Cancel-After time (the batch is canceled). As for jobs, a failure there is
   * logged and left to the sweep.
   */
  async claimChunk(chunkId: string): Promise<ClaimedChunk | null> {
    const chunk = await this.r.chunks.claim(chunkId);
    if (chunk) return chunk;
    await this.endOverdueChunk(chunkId).catch((err: Error) => this.r.logger.warn({ err: err.message }, "ending an overdue chunk at claim failed; the deadline sweep ends it"));
    return null;
  }

  /** One page of the deadline sweep over jobs: queued jobs past their queue deadline expire. */
  expireOverdueJobs(limit: number): Promise<SweptPage> {
    return this.sweepJobs((client) => this.r.jobs.expireOverdue(limit, client));
  }

  /** One page of the Cancel-After sweep over jobs: jobs not terminal past their cancelAt are canceled. */
  cancelOverdueJobs(limit: number): Promise<SweptPage> {
    return this.sweepJobs((client) => this.r.jobs.cancelOverdue(limit, client));
  }

  /** One page of the deadline sweep over batch items: unstarted chunks of batches past their queue deadline expire. */
  async expireOverdueItems(limit: number): Promise<SweptPage> {
    const expired = await this.expireItems({ limit });
    return { due: expired.chunks, ended: expired.items };
  }

  /** One page of the Cancel-After sweep over batches: each batch past its cancelAt is canceled (see cancelBatch), in a transaction of its own. */
  async cancelOverdueBatches(limit: number): Promise<SweptPage> {
    const due = await this.r.batches.dueForCancel(limit);
    let ended = 0;
    for (const batchId of due) if (await this.cancelBatch(batchId)) ended++;
    return { due: due.length, ended };
  }

  private async endOverdueChunk(chunkId: string): Promise<void> {
    const due = await this.r.chunks.overdue(chunkId);
    if (due?.cancel) await this.cancelBatch(due.batchId);
    else if (due?.expire) await this.expireItems({ ids: [chunkId] });
  }

  /** Expires unstarted chunks' items (see BatchChunkStore.expire) with `batch.completed` for each batch that completes, in one transaction. */
  private async expireItems(select: { ids: string[] } | { limit: number }): Promise<ExpiredChunks> {
    const { expired, events } = await this.r.db.transaction(async (client) => {
      const expired = await this.r.chunks.expire(select, client);
      const events: RecordedEvent[] = [];
      for (const settlement of expired.settlements) events.push(...(await this.batchCompletedEvents(settlement, client)));
      return { expired, events };
    });
    if (expired.items > 0) await this.afterCommit({ channels: expired.batchIds, events });
    return expired;
  }

  private async sweepJobs(page: (client: Queryable) => Promise<{ due: number; finished: FinishedJob[] }>): Promise<SweptPage> {
    let due = 0;
    const ended = await this.endJobs(async (client) => {
      const swept = await page(client);
      due = swept.due;
      return swept.finished;
    });
    return { due, ended: ended.length };
  }

  /** Jobs a statement ended (expired or canceled) with their events, in one transaction; then wakes their waiters and enqueues the deliveries. */
  private async endJobs(end: (client: Queryable) => Promise<FinishedJob[]>): Promise<FinishedJob[]> {
    const { finished, events } = await this.r.db.transaction(async (client) => {
      const finished = await end(client);
      return { finished, events: await recordJobEvents(this.r.events, finished, client) };
    });
    if (finished.length > 0) await this.afterCommit({ channels: finished.map((f) => f.id), events });
    return finished;
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
