import type {
  AnsweredJob,
  BatchDraft,
  ChunkItemOutcome,
  ClaimedChunk,
  ClaimedJob,
  CommittedDraft,
  FinishedChunk,
  FinishedJob,
  FlightLeader,
  FollowResult,
  JobOutcome,
  NewJob,
  RecordedEvent,
} from "@inferline/db";
import { CancelSystem } from "./cancel-system.ts";
import { DeadlineSystem } from "./deadline-system.ts";
import { EventSystem } from "./event-system.ts";
import type { OutcomeHooks, OutcomeResources, SweptPage } from "./resources.ts";
import { ResultSystem } from "./result-system.ts";

export type { EndedWork, OutcomeHooks, OutcomeLogger, OutcomeResources, SweptPage } from "./resources.ts";

/**
 * The outcome path: every write that makes jobs or batch items terminal (results, failures,
 * cancels, expiries, and the claims that end overdue work instead of running it) goes through
 * here. Each operation runs its statements and records its webhook events in one transaction,
 * so a crash cannot keep an outcome and lose its event; after commit it wakes the waiters and
 * enqueues the deliveries (see EventSystem).
 *
 * One system per lifecycle concern, over the shared resources: ResultSystem (a run's outcomes
 * and rows terminal from the start), CancelSystem (cancels, and work that ends without a run),
 * DeadlineSystem (claims that end overdue work, the deadline sweep's pages), EventSystem (webhook
 * events and what follows a commit). Their decisions are pure functions in decisions.ts.
 */
export class OutcomeSystem {
  private readonly events: EventSystem;
  private readonly results: ResultSystem;
  private readonly cancels: CancelSystem;
  private readonly deadlines: DeadlineSystem;

  constructor(r: OutcomeResources, hooks: OutcomeHooks = {}) {
    this.events = new EventSystem(r, hooks);
    this.results = new ResultSystem(r, this.events, hooks);
    this.cancels = new CancelSystem(r, this.events);
    this.deadlines = new DeadlineSystem(r, this.events, this.cancels);
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
  finishJobs(
    outcomes: JobOutcome[],
    dispatchId?: string,
    options: { standalone?: boolean } = {},
  ): Promise<FinishedJob[]> {
    return this.results.finishJobs(outcomes, dispatchId, options);
  }

  /**
   * Writes the outcome of a job that ran without a claim (see JobStore.finishUnclaimed): one
   * statement, as a standalone job's write is; then wakes its waiters with its view. Resolves with
   * the job when it was still queued, else with nothing (the caller takes the claim path).
   */
  finishUnclaimed(outcome: JobOutcome, dispatchId: string, startedAt: Date): Promise<FinishedJob[]> {
    return this.results.finishUnclaimed(outcome, dispatchId, startedAt);
  }

  /**
   * Stores jobs answered from the result cache at submit (see JobStore.insertAnswered): already
   * `succeeded`, with their `job.succeeded` events in the same transaction; the deliveries are
   * enqueued after commit. Nobody waits on a job that did not exist, so nothing is published.
   * Without webhooks there is no event to record, and the insert runs as a statement of its own.
   */
  insertAnswered(jobs: AnsweredJob[]): Promise<void> {
    return this.results.insertAnswered(jobs);
  }

  /**
   * Inserts jobs identical to `leader` as its followers (see JobStore.insertFollowers), and the
   * `job.succeeded` events of those answered at once from its result, in one transaction.
   */
  insertFollowers(leader: FlightLeader, jobs: NewJob[]): Promise<FollowResult> {
    return this.results.insertFollowers(leader, jobs);
  }

  /**
   * Writes a batch chunk's outcomes (index-aligned with its claim) on its own: one transaction
   * already carries up to 512 items, the batch's accounting and `batch.completed` when this
   * completes the batch.
   */
  finishChunk(chunkId: string, outcomes: Array<ChunkItemOutcome | undefined>): Promise<FinishedChunk | null> {
    return this.results.finishChunk(chunkId, outcomes);
  }

  /**
   * Commits a batch being created (see BatchDraft.commit). A batch whose items were all answered
   * from the result cache completes with it: its `batch.completed` event is recorded in the same
   * transaction and delivered after commit, as any completion's.
   */
  commitBatch(draft: BatchDraft, total: number, requestHash: string | null): Promise<CommittedDraft<RecordedEvent>> {
    return this.results.commitBatch(draft, total, requestHash);
  }

  /**
   * Cancels a queued or running job of the tenant. An id that is no such job but names a batch
   * item (see batchItemId) cancels that item through its chunk, in the same transaction. False
   * when nothing was canceled: terminal already, or not the tenant's.
   */
  cancelJob(tenantId: string, id: string): Promise<boolean> {
    return this.cancels.cancelJob(tenantId, id);
  }

  /**
   * Cancels every item of the batch not yet terminal (the caller has checked that the batch is
   * the tenant's). False when the batch had completed already, seen under the batch's locks.
   */
  cancelBatch(batchId: string): Promise<boolean> {
    return this.cancels.cancelBatch(batchId);
  }

  /**
   * Claims jobs of queue entry `entryId` for a run (see JobStore.claim). The jobs it skipped for a
   * passed deadline end here, with their events, in a transaction of their own (only when there
   * are any): such a job is never run. Should that transaction fail, the claim stands and the
   * deadline sweep, or the entry's next claim, ends them.
   */
  claimJobs(ids: string[], entryId?: string): Promise<ClaimedJob[]> {
    return this.deadlines.claimJobs(ids, entryId);
  }

  /**
   * Claims a batch chunk for a run (see BatchChunkStore.claim). A chunk it returned null for may
   * be overdue: not started by its batch's queue deadline (its items expire, never run), or its
   * batch past its Cancel-After time (the batch is canceled). As for jobs, a failure there is
   * logged and left to the sweep.
   */
  claimChunk(chunkId: string): Promise<ClaimedChunk | null> {
    return this.deadlines.claimChunk(chunkId);
  }

  /** One page of the deadline sweep over jobs: queued jobs past their queue deadline expire. */
  expireOverdueJobs(limit: number): Promise<SweptPage> {
    return this.deadlines.expireOverdueJobs(limit);
  }

  /** One page of the Cancel-After sweep over jobs: jobs not terminal past their cancelAt are canceled. */
  cancelOverdueJobs(limit: number): Promise<SweptPage> {
    return this.deadlines.cancelOverdueJobs(limit);
  }

  /** One page of the deadline sweep over batch items: unstarted chunks of batches past their queue deadline expire. */
  expireOverdueItems(limit: number): Promise<SweptPage> {
    return this.deadlines.expireOverdueItems(limit);
  }

  /** One page of the Cancel-After sweep over batches: each batch past its cancelAt is canceled, in a transaction of its own. */
  cancelOverdueBatches(limit: number): Promise<SweptPage> {
    return this.deadlines.cancelOverdueBatches(limit);
  }
}
