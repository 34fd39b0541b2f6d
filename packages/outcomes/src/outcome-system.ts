import { isInputFault, isUuid, parseBatchItemId, type JobStatus } from "@inferline/contracts";
import type {
  AnsweredJob,
  BatchChunkStore,
  BatchDraft,
  CommittedDraft,
  BatchSettlement,
  BatchStore,
  ChunkItemOutcome,
  ClaimedChunk,
  ClaimedJob,
  Database,
  EmptiedEntry,
  EntryCountStore,
  ExpiredChunks,
  FinishedChunk,
  FinishedJob,
  FlightLeader,
  FollowResult,
  JobOutcome,
  JobStore,
  Queryable,
  NewJob,
  RecordedEvent,
  ReleasedFollowers,
  WebhookEventRecorder,
} from "@inferline/db";
import type { Dispatcher, FinishedNotifier } from "@inferline/queue";
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
  jobs: Pick<
    JobStore,
    | "finish"
    | "finishStandalone"
    | "finishUnclaimed"
    | "cancel"
    | "claim"
    | "endOverdue"
    | "expireOverdue"
    | "cancelOverdue"
    | "insertAnswered"
    | "insertFollowers"
    | "finishFollowers"
    | "releaseFollowers"
  >;
  chunks: Pick<BatchChunkStore, "finish" | "cancelItem" | "claim" | "overdue" | "expire">;
  batches: Pick<BatchStore, "cancel" | "eventSubject" | "dueForCancel">;
  /** Queue entries' counts: jobs that end without a run come off them in the transaction that ends them. */
  dispatches: EntryCountStore;
  events: WebhookEventRecorder;
  /** Wakes long-polls: one message per write. */
  notifier: Pick<FinishedNotifier, "publish">;
  /** Enqueues webhook deliveries. */
  deliveries: Pick<WebhookQueue, "enqueue">;
  /**
   * Adds queue entries: for the followers of a single flight whose leader was canceled or expired
   * (released onto entries of their own). Without it their rows wait for the reconciler. Also
   * removes the waiting entries whose jobs all ended before a worker took them.
   */
  entries?: Pick<Dispatcher, "enqueue" | "remove">;
  logger: OutcomeLogger;
}

export interface OutcomeHooks {
  /** Called after each committed result write with the jobs it finished (tests hang here). */
  onFinished?: (jobs: FinishedJob[]) => Promise<void>;
  /**
   * Called after each commit that made jobs or batch items terminal (results, retries exhausted,
   * expiries at claim and by the sweep, cancels), counted by kind, model and status: what the
   * workers' finished counters count. Batch items that a chunk's run finished are not reported
   * here (finishChunk does not know the chunk's model; its caller does).
   */
  ended?: (work: EndedWork[]) => void;
}

/** Jobs or batch items of one model that one commit moved to one terminal status. */
export interface EndedWork {
  kind: "job" | "item";
  model: string;
  status: JobStatus;
  count: number;
}

/** One page of a deadline sweep: rows it took (a full page means there may be more) and jobs or items it ended. */
export interface SweptPage {
  due: number;
  ended: number;
}

/** What a committed write leaves to do: the channels to wake (job ids, or a batch id), the events to deliver and the followers to enqueue. */
interface Committed {
  channels: string[];
  /** Views of some of the channels' jobs, by id, for the message (see FinishedNotifier.publish). */
  views?: ReadonlyMap<string, string>;
  events: RecordedEvent[];
  released?: ReleasedFollowers[];
  /** Queue entries whose rows the commit deleted (all their jobs ended): those still waiting are removed. */
  emptied?: EmptiedEntry[];
  /** What the commit ended, for the `ended` hook. */
  ended?: EndedWork[];
}

/** What a group of job results recorded with them: their events, and the followers released onto entries of their own. */
interface JobsRecorded {
  events: RecordedEvent[];
  released: ReleasedFollowers[];
}

const NOTHING_RECORDED: JobsRecorded = { events: [], released: [] };

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
  private readonly results: ResultWriter<JobsRecorded>;

  constructor(
    private readonly r: OutcomeResources,
    private readonly hooks: OutcomeHooks = {},
  ) {
    this.results = new ResultWriter(
      (outcomes, doneEntries, standalone) => this.writeJobs(outcomes, doneEntries, standalone),
      (written) => this.afterJobs(written),
    );
  }

  /**
   * Writes the outcomes of jobs, group-committed with other callers' (see ResultWriter): one
   * transaction per group carries the results, the queue entries they complete and their events.
   * `dispatchId` names the queue entry these are all the results of. `standalone` says that every
   * job of `outcomes` was claimed standalone (ClaimedJob.standalone: no webhook, no flight led):
   * a group of only such writes has no event to record and no follower to finish, and is written
   * without a transaction. Resolves with the jobs this write moved to a terminal state (a job
   * already terminal, e.g. canceled, keeps its state).
   */
  finishJobs(outcomes: JobOutcome[], dispatchId?: string, options: { standalone?: boolean } = {}): Promise<FinishedJob[]> {
    return this.results.write(outcomes, dispatchId, options.standalone ?? false);
  }

  /**
   * Writes the outcome of a job that ran without a claim (see JobStore.finishUnclaimed): one
   * statement, as a standalone job's write is; then wakes its waiters with its view. Resolves with
   * the job when it was still queued, else with nothing (the caller takes the claim path).
   */
  async finishUnclaimed(outcome: JobOutcome, dispatchId: string, startedAt: Date): Promise<FinishedJob[]> {
    const finished = await this.r.jobs.finishUnclaimed(outcome, dispatchId, startedAt);
    if (finished.length > 0) await this.afterJobs({ finished, recorded: NOTHING_RECORDED });
    return finished;
  }

  /**
   * Stores jobs answered from the result cache at submit (see JobStore.insertAnswered): already
   * `succeeded`, with their `job.succeeded` events in the same transaction; the deliveries are
   * enqueued after commit. Nobody waits on a job that did not exist, so nothing is published.
   * Without webhooks there is no event to record, and the insert runs as a statement of its own.
   */
  async insertAnswered(jobs: AnsweredJob[]): Promise<void> {
    if (jobs.length === 0) return;
    if (!jobs.some((j) => j.webhook)) return void (await this.r.jobs.insertAnswered(jobs));
    const events = await this.r.db.transaction(async (client) => recordJobEvents(this.r.events, await this.r.jobs.insertAnswered(jobs, client), client));
    await this.afterCommit({ channels: [], events });
  }

  /**
   * Inserts jobs identical to `leader` as its followers (see JobStore.insertFollowers), and the
   * `job.succeeded` events of those answered at once from its result, in one transaction.
   */
  async insertFollowers(leader: FlightLeader, jobs: NewJob[]): Promise<FollowResult> {
    if (!jobs.some((j) => j.webhook)) return this.r.jobs.insertFollowers(leader, jobs);
    const { result, events } = await this.r.db.transaction(async (client) => {
      const result = await this.r.jobs.insertFollowers(leader, jobs, client);
      return { result, events: await recordJobEvents(this.r.events, result.inserted, client) };
    });
    await this.afterCommit({ channels: [], events });
    return result;
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
   * Commits a batch being created (see BatchDraft.commit). A batch whose items were all answered
   * from the result cache completes with it: its `batch.completed` event is recorded in the same
   * transaction and delivered after commit, as any completion's.
   */
  async commitBatch(draft: BatchDraft, total: number, requestHash: string | null): Promise<CommittedDraft<RecordedEvent>> {
    const batchId = draft.batch.id;
    const committed = await draft.commit(total, requestHash, (client) => recordBatchCompleted(this.r.events, this.r.batches, batchId, client));
    if (committed.completed) await this.afterCommit({ channels: [batchId], events: committed.recorded });
    return committed;
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
      if (job) {
        const emptied = await this.r.dispatches.takeOff([job.dispatchId], client);
        const events = await recordJobEvents(this.r.events, [job], client);
        return { channels: [id], events, released: await this.releaseFollowers([job], client), emptied, ended: jobsEnded([job]) };
      }
      const done = item && (await this.r.chunks.cancelItem(tenantId, item.batchId, item.index, client));
      if (!item || !done) return null;
      // Long-polls on an item listen on its batch's id.
      return { channels: [item.batchId], events: await this.batchCompletedEvents(done.settlement, client), emptied: done.emptied };
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
      if (!done) return null;
      const ended: EndedWork[] = [{ kind: "item", model: done.model, status: "canceled", count: done.canceled }];
      return { channels: [batchId], events: await this.batchCompletedEvents(done.settlement, client), emptied: done.emptied, ended };
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
    if (expired.items > 0) {
      const ended = expired.byModel.map((m): EndedWork => ({ kind: "item", model: m.model, status: "expired", count: m.items }));
      await this.afterCommit({ channels: expired.batchIds, events, emptied: expired.emptied, ended });
    }
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

  /**
   * Jobs a statement ended (expired or canceled) with their events, taken off their queue
   * entries' counts, in one transaction; then wakes their waiters and enqueues the deliveries.
   */
  private async endJobs(end: (client: Queryable) => Promise<FinishedJob[]>): Promise<FinishedJob[]> {
    const { finished, events, released, emptied } = await this.r.db.transaction(async (client) => {
      const finished = await end(client);
      const entries = finished.map((f) => f.dispatchId);
      const emptied = await this.r.dispatches.takeOff(entries, client);
      return { finished, events: await recordJobEvents(this.r.events, finished, client), released: await this.releaseFollowers(finished, client), emptied };
    });
    if (finished.length > 0) await this.afterCommit({ channels: finished.map((f) => f.id), events, released, emptied, ended: jobsEnded(finished) });
    return finished;
  }

  /**
   * The ResultWriter's persist: one group's results, done queue entries and events, in one
   * transaction; the followers of single flights these results end finish in it too (see
   * JobStore.finishFollowers), with their events, and are woken with the rest, or are released
   * onto queue entries of their own when the leader's failure was not its input's (see
   * isInputFault). A standalone group has neither, so its statement runs alone: one round trip
   * instead of four (begin, finish, followers, commit). Should its results span several
   * statements, each commits on its own, which loses nothing: the entry's row goes with the last,
   * so a crash between them leaves it for the reconciler, whose re-run skips the jobs already finished.
   */
  private async writeJobs(outcomes: JobOutcome[], doneEntries: string[], standalone: boolean): Promise<Written<JobsRecorded>> {
    if (standalone) return { finished: await this.r.jobs.finishStandalone(outcomes, doneEntries), recorded: NOTHING_RECORDED };
    return this.r.db.transaction(async (client) => {
      const finished = await this.r.jobs.finish(outcomes, doneEntries, client);
      const { shared, rerun } = flightsEnded(finished, outcomes);
      const all = shared.length > 0 ? [...finished, ...(await this.r.jobs.finishFollowers(shared, client))] : finished;
      const released = rerun.length > 0 ? await this.r.jobs.releaseFollowers(rerun, undefined, client) : [];
      return { finished: all, recorded: { events: await recordJobEvents(this.r.events, all, client), released } };
    });
  }

  /** Followers of jobs that just ended without a run's outcome (canceled, expired), released onto queue entries in the caller's transaction. */
  private releaseFollowers(ended: FinishedJob[], client: Queryable): Promise<ReleasedFollowers[]> {
    return this.r.jobs.releaseFollowers(
      ended.filter((f) => f.cacheKey && (f.status === "canceled" || f.status === "expired")).map((f) => f.id),
      undefined,
      client,
    );
  }

  /** The ResultWriter's after: runs once per committed group. */
  private async afterJobs({ finished, recorded }: Written<JobsRecorded>): Promise<void> {
    const views = new Map<string, string>();
    for (const f of finished) if (f.viewJson) views.set(f.id, f.viewJson);
    await this.afterCommit({ channels: finished.map((f) => f.id), views, events: recorded.events, released: recorded.released, ended: jobsEnded(finished) });
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
  private async afterCommit({ channels, views, events, released = [], emptied = [], ended = [] }: Committed): Promise<void> {
    const counted = ended.filter((e) => e.count > 0);
    if (counted.length > 0) this.hooks.ended?.(counted);
    const waiting = emptied.filter((e) => e.waiting);
    if (waiting.length > 0) {
      // Best effort: an entry left behind is taken by a worker, whose claim finds nothing to run.
      const warn = (err: Error) => this.r.logger.warn({ err: err.message }, "removing emptied queue entries failed; a worker skips them");
      await this.r.entries?.remove(waiting).catch(warn);
    }
    if (released.length > 0) {
      const groups = released.map((r) => ({ dispatchId: r.dispatchId, model: r.model, version: r.version, priority: r.priority, jobIds: r.jobIds, tenantId: r.tenantId }));
      await this.r.entries?.enqueue(groups).catch((err: Error) => this.r.logger.warn({ err: err.message }, "enqueueing released followers failed; the reconciler will"));
    }
    if (channels.length > 0)
      await this.r.notifier.publish(channels, views).catch((err: Error) => this.r.logger.warn({ err: err.message }, "finished notification failed; long-polls look again on their own"));
    if (events.length === 0) return;
    await this.r.deliveries.enqueue(events).catch((err: Error) => this.r.logger.warn({ err: err.message }, "webhook enqueue failed; the sweep will retry"));
  }
}

/**
 * The single flights that a write of results ended, by what their followers do: share the
 * leader's outcome (it succeeded, or failed for its input: see isInputFault), or run anew (it
 * failed for another reason, which the followers, never run, have no part in).
 */
function flightsEnded(finished: FinishedJob[], outcomes: JobOutcome[]): { shared: string[]; rerun: string[] } {
  const shared: string[] = [];
  const rerun: string[] = [];
  const failures = new Map<string, string>();
  for (const o of outcomes) if (o.status === "failed") failures.set(o.id, o.errorCode);
  for (const f of finished) {
    if (!f.cacheKey) continue;
    if (f.status === "succeeded") shared.push(f.id);
    else if (f.status === "failed") (isInputFault(failures.get(f.id) ?? "") ? shared : rerun).push(f.id);
  }
  return { shared, rerun };
}

/** Jobs that one commit ended, counted by model and status. */
function jobsEnded(jobs: FinishedJob[]): EndedWork[] {
  const counts = new Map<string, EndedWork>();
  for (const job of jobs) {
    const key = `${job.model}\u0000${job.status}`;
    const work = counts.get(key);
    if (work) work.count++;
    else counts.set(key, { kind: "job", model: job.model, status: job.status, count: 1 });
  }
  return [...counts.values()];
}
