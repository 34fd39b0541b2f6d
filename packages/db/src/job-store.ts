import type pg from "pg";
import type { JobListQuery } from "@inferline/contracts";
import type { PrismaClient } from "./generated/prisma/client.ts";
import type { Queryable } from "./database.ts";
import type { Job } from "./generated/prisma/client.ts";
import type { JobViewFields, NewJob } from "./jobs/columns.ts";
import type { FinishedJob, JobOutcome } from "./jobs/finished.ts";
import { cancelJob } from "./jobs/cancel.ts";
import { claimJobs, isQueued, releaseClaims, type ClaimResult } from "./jobs/claim.ts";
import { finishJobs, finishUnclaimed } from "./jobs/finish.ts";
import {
  finishFollowers,
  insertFollowers,
  releaseFollowers,
  type FlightLeader,
  type FollowResult,
  type ReleasedFollowers,
} from "./jobs/followers.ts";
import { insertAnsweredJobs, insertJobs, type AnsweredJob } from "./jobs/insert.ts";
import { isolateJobs, type IsolatedJob } from "./jobs/isolate.ts";
import { LIST_SCAN_ROWS, listJobs } from "./jobs/listing.ts";
import { cancelOverdue, endOverdue, expireOverdue, type SweptPage } from "./jobs/overdue.ts";
import { existingJobs, findByIdempotencyKey, getJob, releaseIdempotencyKey } from "./jobs/reads.ts";

export { submittedFields, type NewJob, type SubmittedFields } from "./jobs/columns.ts";
export type { FinishedJob, JobOutcome } from "./jobs/finished.ts";
export type { ClaimedJob, ClaimResult } from "./jobs/claim.ts";
export type { FlightLeader, FollowResult, InsertedFollower, ReleasedFollowers } from "./jobs/followers.ts";
export type { AnsweredJob } from "./jobs/insert.ts";
export type { IsolatedJob } from "./jobs/isolate.ts";
export {
  ANNOUNCED_MAX_JOBS,
  ANNOUNCED_RESULT_BYTES,
  toJobView,
  viewOfAnsweredJob,
  viewOfNewJob,
} from "./jobs/views.ts";

export interface JobStoreOptions {
  /** The most jobs one page of `list` reads to check a status filter. Default LIST_SCAN_ROWS. */
  listScanRows?: number;
}

/**
 * The statements on `jobs`, one family per file under jobs/ (columns.ts is the table of columns
 * they all derive from). The hot-path ones handle many rows in one round trip (json documents,
 * unnest arrays), because per-row statements would bound throughput long before the model does.
 * Those every job passes (insert, claim, finish) are named: prepared once per connection, so
 * PostgreSQL plans them once rather than on each call. Their texts are constants and return
 * named columns, never `*`, so a migration that adds a column does not invalidate them.
 */
export class JobStore {
  private readonly listScanRows: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly prisma: PrismaClient,
    options: JobStoreOptions = {},
  ) {
    this.listScanRows = options.listScanRows ?? LIST_SCAN_ROWS;
  }

  /** Inserts queued jobs and their queue entries' dispatch rows (see insertJobs). */
  async insertMany(jobs: NewJob[], client: Queryable = this.pool): Promise<void> {
    return insertJobs(client, jobs);
  }

  /** Marks jobs running and returns their inputs; overdue ones are named, not claimed (see claimJobs). */
  async claim(ids: string[], entryId?: string): Promise<ClaimResult> {
    return claimJobs(this.pool, ids, entryId);
  }

  /** Ends the given jobs that are past a deadline, in the caller's transaction (see endOverdue). */
  async endOverdue(ids: string[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    return endOverdue(q, ids);
  }

  /** One page of the deadline sweep (see expireOverdue). */
  async expireOverdue(limit: number, q: Queryable = this.pool): Promise<SweptPage> {
    return expireOverdue(q, limit);
  }

  /** One page of the Cancel-After sweep (see cancelOverdue). */
  async cancelOverdue(limit: number, q: Queryable = this.pool): Promise<SweptPage> {
    return cancelOverdue(q, limit);
  }

  /** Writes outcomes of many jobs, each once (see finishJobs). Returns the jobs this call finished. */
  async finish(
    outcomes: JobOutcome[],
    doneDispatches: string[] = [],
    q: Queryable = this.pool,
  ): Promise<FinishedJob[]> {
    return finishJobs(q, outcomes, doneDispatches, false);
  }

  /**
   * finish() for standalone jobs only (no webhook, no single flight led: ClaimedJob.standalone),
   * each statement its own transaction, committed without waiting for its WAL flush (see
   * finishJobs). `q` is the pool but in tests (a transaction client shows the setting).
   */
  async finishStandalone(
    outcomes: JobOutcome[],
    doneDispatches: string[] = [],
    q: Queryable = this.pool,
  ): Promise<FinishedJob[]> {
    return finishJobs(q, outcomes, doneDispatches, true);
  }

  /** Gives back claims of queue entry `entryId` whose runs were abandoned, not failed (see releaseClaims). */
  async releaseClaims(ids: string[], entryId: string): Promise<void> {
    return releaseClaims(this.pool, ids, entryId);
  }

  /** Whether the job is still `queued` (see isQueued). */
  async isQueued(id: string): Promise<boolean> {
    return isQueued(this.pool, id);
  }

  /** Writes the outcome of a job that ran without a claim, while it is still queued (see finishUnclaimed). */
  async finishUnclaimed(
    outcome: JobOutcome,
    dispatchId: string,
    startedAt: Date,
    q: Queryable = this.pool,
  ): Promise<FinishedJob[]> {
    return finishUnclaimed(q, outcome, dispatchId, startedAt);
  }

  /** Moves jobs of a queue entry onto entries of their own, one job each (see isolateJobs). */
  async isolate(
    entryId: string,
    jobIds: string[],
    options: { removeEntry: boolean },
    q: Queryable = this.pool,
  ): Promise<IsolatedJob[]> {
    return isolateJobs(q, entryId, jobIds, options.removeEntry);
  }

  /** Cancels a queued or running job of the tenant; undefined when it was not cancelable (see cancelJob). */
  async cancel(tenantId: string, id: string, q: Queryable = this.pool): Promise<FinishedJob | undefined> {
    return cancelJob(q, tenantId, id);
  }

  /** Inserts jobs answered from the result cache at submit, returned as finished (see insertAnsweredJobs). */
  async insertAnswered(jobs: AnsweredJob[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    return insertAnsweredJobs(q, jobs);
  }

  /** Inserts jobs identical to `leader` as its followers, or answered from its result (see insertFollowers). */
  async insertFollowers(leader: FlightLeader, jobs: NewJob[], q: Queryable = this.pool): Promise<FollowResult> {
    return insertFollowers(q, leader, jobs);
  }

  /** Ends the followers of leaders that just succeeded or failed, with their outcome (see finishFollowers). */
  async finishFollowers(leaderIds: string[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    return finishFollowers(q, leaderIds);
  }

  /** Moves the followers of leaders that ended without a result onto queue entries of their own (see releaseFollowers). */
  async releaseFollowers(leaderIds: string[], entrySize = 256, q: Queryable = this.pool): Promise<ReleasedFollowers[]> {
    return releaseFollowers(q, leaderIds, entrySize);
  }

  /** One job of a tenant. */
  async get(tenantId: string, id: string): Promise<Job | null> {
    return getJob(this.pool, tenantId, id);
  }

  /** The tenant's job stored under an Idempotency-Key. */
  async findByIdempotencyKey(tenantId: string, key: string): Promise<Job | null> {
    return findByIdempotencyKey(this.pool, tenantId, key);
  }

  /** Frees an idempotency key older than its retention so that it can be used again. */
  async releaseIdempotencyKey(jobId: string): Promise<void> {
    return releaseIdempotencyKey(this.pool, jobId);
  }

  /** Which of `ids` are stored: after a write whose commit went unanswered, what it did. */
  async existing(ids: string[]): Promise<Set<string>> {
    return existingJobs(this.pool, ids);
  }

  /** A page of the tenant's jobs, newest first (see listJobs). */
  async list(tenantId: string, query: JobListQuery): Promise<{ jobs: JobViewFields[]; nextCursor: string | null }> {
    return listJobs(this.pool, tenantId, query, this.listScanRows);
  }
}
