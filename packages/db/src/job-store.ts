import crypto from "node:crypto";
import type pg from "pg";
import type { FlatTensor, InferenceResult, JobListQuery, JobPriority, JobStatus, JobView, WebhookSpec } from "@inferline/contracts";
import type { PrismaClient } from "./generated/prisma/client.ts";
import type { Queryable } from "./database.ts";
import type { Job } from "./generated/prisma/client.ts";
import { encodeCursor, LIST_SCAN_ROWS, listStatement, splitPage } from "./job-listing.ts";

export interface NewJob {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  priority: JobPriority;
  inputs: FlatTensor[];
  requestedOutputs: string[];
  metadata: Record<string, string>;
  webhook: WebhookSpec | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** The queue entry that carries the job (see Dispatcher.plan; an entry carries one tenant's jobs). */
  dispatchId: string | null;
  /** Not started by then: the job expires (maxQueueSeconds). */
  queueDeadline: Date | null;
  /** Not terminal by then: the job is canceled (Cancel-After). */
  cancelAt: Date | null;
  createdAt: Date;
  /** The digest its result is cached under (see @inferline/cache), for a model whose manifest sets `cache`; the worker stores the result there. */
  cacheKey?: string | null;
  /** The W3C traceparent of the submit's span (OpenTelemetry), which the worker's spans continue; absent or null when not traced. */
  traceParent?: string | null;
  /** Whether the job leads its digest's single flight (JobResultCache made it the leader); absent: it does not. */
  leadsFlight?: boolean;
}

/** A job answered from the result cache at submit: stored `succeeded` with the cached result (see JobStore.insertAnswered). */
export interface AnsweredJob extends NewJob {
  /** The cached result's JSON text, stored as it is. */
  resultJson: string;
  /** When it was answered: its start and completion time (the submit's answer shows the same). */
  answeredAt: Date;
}

/** The job a follower waits for (single flight: an identical request in flight); see JobStore.insertFollowers. */
export interface FlightLeader {
  id: string;
  tenantId: string;
  cacheKey: string;
}

/** A follower as inserted: waiting on its leader (`queued`), or answered from the leader's result (`succeeded`, cached). */
export interface InsertedFollower extends FinishedJob {
  /** The leader's result, for a follower inserted `succeeded`. */
  result: InferenceResult | null;
}

/** What insertFollowers found and did. */
export interface FollowResult {
  /** The leader's status under the statement's lock; null: no job of that tenant and cache key (not inserted yet, or gone). */
  leaderStatus: JobStatus | null;
  /** The followers it inserted; none when the leader was absent, failed, canceled or expired (they must run on their own). */
  inserted: InsertedFollower[];
}

/** Followers moved onto queue entries of their own when their leader ended without a result (see JobStore.releaseFollowers). */
export interface ReleasedFollowers {
  dispatchId: string;
  tenantId: string;
  model: string;
  version: string;
  priority: JobPriority;
  jobIds: string[];
}

export interface ClaimedJob {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  inputs: FlatTensor[];
  requestedOutputs: string[];
  attempts: number;
  /** Where the worker stores its result (null: the model does not cache). */
  cacheKey: string | null;
  /** The W3C traceparent stored at submit (null: not traced). */
  traceParent: string | null;
  /**
   * No webhook and no single flight led: its outcome touches its own row only, so its result may
   * be written by one statement without a transaction (see OutcomeSystem.finishJobs).
   */
  standalone: boolean;
}

/** What a claim took (see JobStore.claim): the jobs to run, and the ids of those it skipped for a passed deadline. */
export interface ClaimResult {
  claimed: ClaimedJob[];
  overdue: string[];
}

/**
 * A job's outcome. A result travels as its JSON text, serialised once per job by the worker
 * (which checks its size), so that no statement ever builds one string out of a whole group's
 * results.
 */
export type JobOutcome = { id: string; status: "succeeded"; resultJson: string } | { id: string; status: "failed"; errorCode: string; errorMessage: string };

/** A job moved onto a queue entry of its own (see JobStore.isolate). */
export interface IsolatedJob {
  jobId: string;
  dispatchId: string;
  model: string;
  version: string;
  priority: JobPriority;
}

/**
 * Whether an overdue job (see JobStore.endOverdue) expires rather than being canceled: still
 * queued, past its queue deadline, and that deadline came no later than its Cancel-After time.
 */
const EXPIRES = `(status = 'queued' and "queueDeadline" <= now() and ("cancelAt" is null or "queueDeadline" <= "cancelAt"))`;

/** The error message of an expired job (its row's columns, before the update clears the deadline). */
const EXPIRY_MESSAGE = `format('not started within its queue deadline of %s s (maxQueueSeconds)', round(extract(epoch from "queueDeadline" - "createdAt")))`;

/** Most bytes of outcome JSON one statement carries; a larger group is written in several. */
const FINISH_STATEMENT_BYTES = 32 * 1024 * 1024;

/**
 * A statement's CTE that commits its transaction without waiting for the WAL flush
 * (synchronous_commit off, local to the transaction). For writes a crash may lose because they
 * are redone (a claim, a standalone result); the statement must reference `relaxed`, or
 * PostgreSQL never evaluates it.
 */
const RELAXED_COMMIT = `relaxed as (select set_config('synchronous_commit', 'off', true))`;

/** A job that a statement just moved to a terminal state (so its events fire exactly once). */
export interface FinishedJob {
  id: string;
  tenantId: string;
  status: JobStatus;
  webhook: WebhookSpec | null;
  /** Its model's name (what the workers' jobs-finished counter is labelled with). */
  model: string;
  /** Its result cache digest (statements return it; null or absent: the model does not cache): a job with one may lead a single flight, whose followers end with it. */
  cacheKey?: string | null;
  /**
   * Its queue entry, returned by the statements that end jobs without a run (cancels, expiries):
   * the job comes off that entry's count (DispatchStore.takeOff). Null: it has none.
   */
  dispatchId?: string | null;
  /**
   * The job as `GET /v1/jobs/:id` shows it, as JSON text, when the write that finished it had it
   * at hand: a run's outcome (JobStore.finish, in a write of at most ANNOUNCED_MAX_JOBS jobs) whose
   * result is at most ANNOUNCED_RESULT_BYTES.
   * The finished message carries it, so that a long-poll answers without reading the job again.
   */
  viewJson?: string;
}

/** Results up to this many JSON bytes travel in the finished message (see FinishedJob.viewJson); a long-poll on a larger one reads it. */
export const ANNOUNCED_RESULT_BYTES = 4096;

/**
 * A write of more jobs than this builds no views: their views would not fit in one message
 * (MAX_ANNOUNCED_VIEW_BYTES of @inferline/queue, 16 KiB, is about 40 small views), and reading
 * and serialising them for every job of a drain cost the worker two thirds more CPU per job.
 * Such groups come under load, when long-polls read the job as before.
 */
export const ANNOUNCED_MAX_JOBS = 32;

/** What a statement that announces the jobs it finished returns of each: the FinishedJob, and the rest of its view (VIEW_COLUMNS). */
type FinishedRow = FinishedJob & Pick<Job, "version" | "priority" | "createdAt" | "attempts" | "metadata" | "startedAt" | "completedAt">;

/** The columns of FinishedRow past FinishedJob's. */
const VIEW_COLUMNS = `j.version, j.priority, j."createdAt", j.attempts, j.metadata, j."startedAt", j."completedAt"`;

/** The columns every statement that ends jobs returns (see FinishedJob). */
const finishedColumns = (t = "") => ["id", `"tenantId"`, "status", "webhook", "model", `"cacheKey"`].map((c) => `${t}${c}`).join(", ");

/** finishedColumns, and the job's queue entry: what the statements that end jobs without a run return. */
const endedColumns = (t = "") => `${finishedColumns(t)}, ${t}"dispatchId"`;

const INSERT_CHUNK = 5000;

/** A NewJob's fields as json_to_recordset reads them. */
const NEW_JOB_COLUMNS = `id uuid, "tenantId" uuid, model text, version text, priority "JobPriority", inputs json, "requestedOutputs" text[], metadata jsonb,
  webhook jsonb, "idempotencyKey" text, "requestHash" text, "dispatchId" uuid, "queueDeadline" timestamptz, "cancelAt" timestamptz, "createdAt" timestamptz,
  "cacheKey" text, "traceParent" text, "leadsFlight" boolean`;

export interface JobStoreOptions {
  /** The most jobs one page of `list` reads to check a status filter. Default LIST_SCAN_ROWS. */
  listScanRows?: number;
}

/** A row of the list statement: a job of the page (`hit`), or where the page's scan ended. */
type ListedRow = JobViewFields & { hit: boolean };

/**
 * The hot-path statements on `jobs`: each handles many rows in one round trip (unnest arrays),
 * because per-row statements would bound throughput long before the model does. Those every job
 * passes (insert, claim, finish) are named: prepared once per connection, so PostgreSQL plans
 * them once rather than on each call. Their texts are constants and return named columns, never
 * `*`, so a migration that adds a column does not invalidate them.
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

  /**
   * Inserts jobs, and the `dispatches` rows of their queue entries, in one statement per chunk.
   * Jobs without a dispatchId get no dispatch row (they are not meant for a queue yet). An entry
   * carries one tenant's jobs (SubmitWriter plans per tenant): its row is written with that
   * tenant, which the fair-share rank, the quota and the queue status read.
   */
  async insertMany(jobs: NewJob[], client: Queryable = this.pool): Promise<void> {
    for (let i = 0; i < jobs.length; i += INSERT_CHUNK) {
      const chunk = jobs.slice(i, i + INSERT_CHUNK);
      // Rows travel as one JSON document: one native JSON.stringify instead of pg escaping every
      // element of a dozen parameter arrays, which showed up as the largest cost of a submit.
      await client.query({
        name: "inferline.jobs.insert",
        text: `with d as (
           insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
           select x.id, x.model, x.version, x.priority, x.jobs, x."jobIds", x."tenantId"
           from json_to_recordset($2::json) as x(id uuid, model text, version text, priority "JobPriority", jobs int, "jobIds" uuid[], "tenantId" uuid)
           on conflict (id) do update set jobs = dispatches.jobs + excluded.jobs, "jobIds" = dispatches."jobIds" || excluded."jobIds")
         insert into jobs (id, "tenantId", model, version, priority, inputs, "requestedOutputs", metadata, webhook,
           "idempotencyKey", "requestHash", "dispatchId", "queueDeadline", "cancelAt", "createdAt", "cacheKey", trace_parent, "leadsFlight")
         select id, "tenantId", model, version, priority, inputs, coalesce("requestedOutputs", '{}'), metadata, webhook,
           "idempotencyKey", "requestHash", "dispatchId", "queueDeadline", "cancelAt", "createdAt", "cacheKey", "traceParent", coalesce("leadsFlight", false)
         from json_to_recordset($1::json) as x(${NEW_JOB_COLUMNS})`,
        values: [JSON.stringify(chunk.map(newJobRow)), JSON.stringify(dispatchRows(chunk))],
      });
    }
  }

  /**
   * Marks jobs running and returns their inputs, and marks their queue entry `entryId` started
   * (its first claim). A job already `running` is claimed again: that is a retry after a crash or
   * a failed attempt (at-least-once); terminal jobs are skipped, so a canceled job never runs.
   * Overdue jobs are skipped too, left as they are and named in `overdue` for endOverdue: a
   * queued job past its queue deadline, or any job past its Cancel-After time (looked for only
   * when the claim skipped some). A claimed job's queue deadline no longer applies and is cleared
   * (so the deadline index holds waiting jobs only).
   *
   * Committed without waiting for its WAL flush (synchronous_commit off for this statement): a
   * claim that a PostgreSQL crash loses leaves the job queued, to be claimed and run again, the
   * at-least-once a worker's crash already gives. The result write that follows flushes the
   * claim too when it commits durably (a job with a webhook or leading a flight); a standalone
   * job's result is relaxed as well (finishStandalone), and is redone the same way. Saves a disk
   * flush on every job's path.
   */
  async claim(ids: string[], entryId?: string): Promise<ClaimResult> {
    const { rows } = await this.pool.query<ClaimedJob & { overdue: boolean }>({
      name: "inferline.jobs.claim",
      text: `with ${RELAXED_COMMIT},
       claimed as (
         update jobs set status = 'running', attempts = attempts + 1, "startedAt" = coalesce("startedAt", now()), "queueDeadline" = null
         where id = any($1::uuid[]) and status in ('queued', 'running')
           and (status = 'running' or "queueDeadline" is null or "queueDeadline" > now()) and ("cancelAt" is null or "cancelAt" > now())
         returning id, "tenantId", model, version, inputs, "requestedOutputs", attempts, "cacheKey", trace_parent as "traceParent",
           webhook is null and "leadsFlight" is false as standalone),
       started as (update dispatches set "startedAt" = coalesce("startedAt", now()) where id = $2::uuid and exists (select 1 from claimed)),
       -- The statement's snapshot, from before the update: the jobs it skipped for a deadline.
       overdue as (
         select id from jobs where (select count(*) from claimed) < cardinality($1::uuid[])
           and id = any($1::uuid[]) and status in ('queued', 'running') and ((status = 'queued' and "queueDeadline" <= now()) or "cancelAt" <= now()))
       select claimed.*, false as overdue from claimed cross join relaxed
       union all select id, null::uuid, null::text, null::text, null::json, null::text[], null::int, null::text, null::text, null::boolean, true from overdue`,
      values: [ids, entryId ?? null],
    });
    const result: ClaimResult = { claimed: [], overdue: [] };
    for (const { overdue, ...job } of rows) {
      if (overdue) result.overdue.push(job.id);
      else result.claimed.push(job);
    }
    return result;
  }

  /**
   * Ends the given jobs that are past a deadline, in the caller's transaction: a queued job past
   * its queue deadline expires (`deadline_exceeded`), any other job not yet terminal past its
   * Cancel-After time is canceled; when both passed, the earlier decides. What a claim skipped
   * (see claim) comes here; jobs that are not overdue are left alone.
   */
  async endOverdue(ids: string[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    if (ids.length === 0) return [];
    const { rows } = await q.query<FinishedJob>(
      `update jobs set status = case when ${EXPIRES} then 'expired'::"JobStatus" else 'canceled'::"JobStatus" end,
         "errorCode" = case when ${EXPIRES} then 'deadline_exceeded' end, "errorMessage" = case when ${EXPIRES} then ${EXPIRY_MESSAGE} end,
         "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
       where id = any($1::uuid[]) and status in ('queued', 'running') and ((status = 'queued' and "queueDeadline" <= now()) or "cancelAt" <= now())
       returning ${endedColumns()}`,
      [ids],
    );
    return rows;
  }

  /**
   * One page of the deadline sweep: up to `limit` jobs whose queue deadline has passed, earliest
   * first, locked (rows another sweep or a claim holds are skipped). Those still queued expire;
   * the others only lose the deadline, which no longer applies. `due` is how many rows the page
   * took (a full page means there may be more).
   */
  async expireOverdue(limit: number, q: Queryable = this.pool): Promise<{ due: number; finished: FinishedJob[] }> {
    const { rows } = await q.query<{ due: number; finished: FinishedJob[] }>(
      `with due as (select id from jobs where "queueDeadline" <= now() order by "queueDeadline" limit $1 for update skip locked),
       ended as (
         update jobs j set status = 'expired', "errorCode" = 'deadline_exceeded', "errorMessage" = ${EXPIRY_MESSAGE},
           "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
         from due where j.id = due.id and j.status = 'queued'
         returning ${endedColumns("j.")}),
       cleared as (update jobs j set "queueDeadline" = null from due where j.id = due.id and j.status <> 'queued')
       select (select count(*) from due)::int as due, coalesce((select json_agg(ended) from ended), '[]'::json) as finished`,
      [limit],
    );
    return rows[0]!;
  }

  /**
   * One page of the Cancel-After sweep, as expireOverdue: jobs past their `cancelAt` that are not
   * yet terminal, running or not, are canceled (a worker's late result then changes nothing);
   * terminal ones only lose the deadline.
   */
  async cancelOverdue(limit: number, q: Queryable = this.pool): Promise<{ due: number; finished: FinishedJob[] }> {
    const { rows } = await q.query<{ due: number; finished: FinishedJob[] }>(
      `with due as (select id from jobs where "cancelAt" <= now() order by "cancelAt" limit $1 for update skip locked),
       ended as (
         update jobs j set status = 'canceled', "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
         from due where j.id = due.id and j.status in ('queued', 'running')
         returning ${endedColumns("j.")}),
       cleared as (update jobs j set "cancelAt" = null from due where j.id = due.id and j.status not in ('queued', 'running'))
       select (select count(*) from due)::int as due, coalesce((select json_agg(ended) from ended), '[]'::json) as finished`,
      [limit],
    );
    return rows[0]!;
  }

  /**
   * Writes outcomes of many jobs in one statement. Only jobs not yet terminal are written, so a
   * retried or duplicate attempt never overwrites a result or a cancel: the visible outcome is
   * exactly-once. A finished job's deadlines no longer apply and are cleared (null stays null,
   * so for jobs without one the update stays HOT). Returns the jobs this call finished.
   */
  async finish(outcomes: JobOutcome[], doneDispatches: string[] = [], q: Queryable = this.pool): Promise<FinishedJob[]> {
    return this.finishParts(outcomes, doneDispatches, q, false);
  }

  /**
   * finish() for standalone jobs only (no webhook, no single flight led: ClaimedJob.standalone),
   * each statement its own transaction, committed without waiting for its WAL flush
   * (synchronous_commit off for that transaction). A result is what can be computed again: should
   * a PostgreSQL crash lose the last few hundred ms of these commits, the jobs are queued or
   * running again with their entries' dispatch rows, which the reconciler re-queues, and they run
   * again; a job is never lost, as its insert is durable. Saves a disk flush on such a job's path
   * to its long-poll. `q` is the pool but in tests (a transaction client shows the setting).
   */
  async finishStandalone(outcomes: JobOutcome[], doneDispatches: string[] = [], q: Queryable = this.pool): Promise<FinishedJob[]> {
    return this.finishParts(outcomes, doneDispatches, q, true);
  }

  private async finishParts(outcomes: JobOutcome[], doneDispatches: string[], q: Queryable, relaxed: boolean): Promise<FinishedJob[]> {
    if (outcomes.length === 0 && doneDispatches.length === 0) return [];
    const parts = outcomeDocuments(outcomes);
    // Views only for groups whose views could travel in one finished message.
    const byId = outcomes.length <= ANNOUNCED_MAX_JOBS ? new Map(outcomes.map((o) => [o.id, o])) : undefined;
    const finished: FinishedJob[] = [];
    // Every part but the last writes results only; the last also forgets the processed entries.
    for (let i = 0; i < parts.length; i++) {
      const rows = await this.finishPart(parts[i]!, i === parts.length - 1 ? doneDispatches : [], q, byId !== undefined, relaxed);
      for (const row of rows) finished.push(byId ? announced(row as FinishedRow, byId.get(row.id)) : row);
    }
    return finished;
  }

  /**
   * Gives back claims of queue entry `entryId` whose runs were abandoned, not failed (the worker's
   * shutdown timeout passed): the jobs still `running` are `queued` again with the claim's attempt
   * taken back (its start time too, when it was their first), and the entry counts as not started.
   * Another worker then runs them as if this one never had. Their queue deadline, cleared by the
   * claim, stays cleared: they were started in time.
   */
  async releaseClaims(ids: string[], entryId: string): Promise<void> {
    await this.pool.query(
      `with released as (
         update jobs set status = 'queued', attempts = greatest(attempts - 1, 0),
           "startedAt" = case when attempts <= 1 then null else "startedAt" end
         where id = any($1::uuid[]) and status = 'running'
         returning id)
       update dispatches set "startedAt" = null where id = $2::uuid and exists (select 1 from released)`,
      [ids, entryId],
    );
  }

  /**
   * Whether the job is still `queued`: what a worker checks before it runs a lone job without a
   * claim (see finishUnclaimed), so that a job canceled before its entry reached the worker never
   * runs. One read by primary key, no write.
   */
  async isQueued(id: string): Promise<boolean> {
    const text = `select status = 'queued' as queued from jobs where id = $1`;
    const { rows } = await this.pool.query<{ queued: boolean }>({ name: "inferline.jobs.is-queued", text, values: [id] });
    return rows[0]?.queued === true;
  }

  /**
   * Writes the outcome of a job that ran without a claim (a lone small job run straight from its
   * queue entry; see the worker's processor): only while it is still `queued`, and counting its
   * attempt, `startedAt` the time the run began. The entry's row goes with it. Returns the job,
   * with its view, or nothing when it was not queued any more (canceled, or claimed by another
   * run): the caller then takes the claim path, which decides what is left to do. Committed
   * without waiting for the WAL flush, as finishStandalone (such a job is standalone).
   */
  async finishUnclaimed(outcome: JobOutcome, dispatchId: string, startedAt: Date, q: Queryable = this.pool): Promise<FinishedJob[]> {
    // One row: plain parameters, not a json_to_recordset document (a quarter of the statement's
    // time at rest, measured), since this write is on a lone job's path to its answer.
    const succeeded = outcome.status === "succeeded";
    const { rows } = await q.query<FinishedRow>({
      name: "inferline.jobs.finish-unclaimed",
      text: `with ${RELAXED_COMMIT}, done as (
         update jobs j set status = $2::"JobStatus", result = $3::json, "errorCode" = $4, "errorMessage" = $5,
           attempts = j.attempts + 1, "startedAt" = $7, "completedAt" = now()
         where j.id = $1::uuid and j.status = 'queued' and j."queueDeadline" is null and j."cancelAt" is null
         returning ${finishedColumns("j.")}, ${VIEW_COLUMNS}),
       gone as (delete from dispatches where id = $6::uuid and exists (select 1 from done))
       select done.* from done cross join relaxed`,
      values: [outcome.id, outcome.status, succeeded ? outcome.resultJson : null, succeeded ? null : outcome.errorCode, succeeded ? null : outcome.errorMessage, dispatchId, startedAt],
    });
    return rows.map((row) => announced(row, outcome));
  }

  /**
   * One statement of a finish; `withViews` also returns the rest of each job's view (FinishedRow);
   * `relaxed` commits its transaction without waiting for the WAL flush (see finishStandalone).
   */
  private async finishPart(document: string, doneDispatches: string[], q: Queryable, withViews: boolean, relaxed: boolean): Promise<FinishedJob[]> {
    const { rows } = await q.query<FinishedJob>({
      name: `inferline.jobs.finish${withViews ? "-with-views" : ""}${relaxed ? "-relaxed" : ""}`,
      text: `with ${relaxed ? `${RELAXED_COMMIT}, ` : ""}done as (
         update jobs j set status = v.status, result = v.result, "errorCode" = v."errorCode", "errorMessage" = v."errorMessage",
           "completedAt" = now(), "startedAt" = coalesce(j."startedAt", now()), "queueDeadline" = null, "cancelAt" = null
         from json_to_recordset($1::json) as v(id uuid, status "JobStatus", result json, "errorCode" text, "errorMessage" text)
         where j.id = v.id and j.status in ('queued', 'running')
         returning ${finishedColumns("j.")}${withViews ? `, ${VIEW_COLUMNS}` : ""}),
       -- The entries whose results these are: processed, so the reconciler forgets them.
       gone as (delete from dispatches where id = any($2::uuid[]))
       select done.* from done${relaxed ? " cross join relaxed" : ""}`,
      values: [document, doneDispatches],
    });
    return rows;
  }

  /**
   * Moves jobs of a queue entry onto entries of their own, one job each (a suspect of a crashed
   * worker, or a job whose run timed out, must not take the rest of its entry down with it
   * again): new dispatch rows, the jobs' dispatchId, and, with `removeEntry`, the old entry's
   * row. Jobs already terminal are left alone. The caller adds the queue entries; should that
   * fail, the reconciler finds the rows.
   *
   * A job's new entry id derives from the old entry's and its own (isolationEntryId), so isolating
   * the same entry again (its worker died after this committed, before the entries were added)
   * makes the same rows and entries, not a second set whose first would be left behind, counted
   * in the tenant's queue with no entry to ever run and delete it.
   */
  async isolate(entryId: string, jobIds: string[], options: { removeEntry: boolean }, q: Queryable = this.pool): Promise<IsolatedJob[]> {
    if (jobIds.length === 0) return [];
    const { rows } = await q.query<IsolatedJob>(
      `with moved as (
         update jobs j set "dispatchId" = x.dispatch
         from unnest($2::uuid[], $3::uuid[]) as x(job, dispatch)
         where j.id = x.job and j.status in ('queued', 'running')
         returning j.id, x.dispatch, j.model, j.version, j.priority, j."tenantId"),
       added as (
         insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
         select dispatch, model, version, priority, 1, array[id], "tenantId" from moved
         on conflict (id) do nothing),
       gone as (delete from dispatches where id = $1 and $4::boolean)
       select id as "jobId", dispatch as "dispatchId", model, version, priority from moved`,
      [entryId, jobIds, jobIds.map((jobId) => isolationEntryId(entryId, jobId)), options.removeEntry],
    );
    return rows;
  }

  /** Cancels a queued or running job of the tenant (its deadlines no longer apply). Returns it, or undefined when it was not cancelable. */
  async cancel(tenantId: string, id: string, q: Queryable = this.pool): Promise<FinishedJob | undefined> {
    const { rows } = await q.query<FinishedJob>(
      `update jobs set status = 'canceled', "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
       where id = $1 and "tenantId" = $2 and status in ('queued', 'running')
       returning ${endedColumns()}`,
      [id, tenantId],
    );
    return rows[0];
  }

  /**
   * Inserts jobs answered from the result cache at submit: `succeeded` at once with the cached
   * result (its JSON text as it is), `cached`, started and completed when answered, no queue entry and no
   * dispatch row (they never reach a worker, the queue depth or a quota). Returns them as
   * finished, for their `job.succeeded` events (recorded in the caller's transaction).
   */
  async insertAnswered(jobs: AnsweredJob[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    const finished: FinishedJob[] = [];
    for (const document of answeredDocuments(jobs)) {
      const { rows } = await q.query<FinishedJob>(
        `insert into jobs (id, "tenantId", model, version, priority, inputs, "requestedOutputs", metadata, webhook, "idempotencyKey", "requestHash",
           "createdAt", "cacheKey", status, result, cached, "startedAt", "completedAt", trace_parent)
         select id, "tenantId", model, version, priority, inputs, coalesce("requestedOutputs", '{}'), metadata, webhook, "idempotencyKey", "requestHash",
           "createdAt", "cacheKey", 'succeeded', result, true, "answeredAt", "answeredAt", "traceParent"
         from json_to_recordset($1::json) as x(${NEW_JOB_COLUMNS}, "answeredAt" timestamptz, result json)
         returning ${finishedColumns()}`,
        [document],
      );
      finished.push(...rows);
    }
    return finished;
  }

  /**
   * Inserts jobs identical to `leader` (same tenant and cache key) as its followers, deciding on
   * the leader's status under a share lock on its row, so that the transaction ending the leader
   * (which updates that row, then finds its followers in a later statement) either waits for
   * these inserts or is seen by them: leader queued or running, the jobs wait for its run
   * (`queued`, `cacheLeader` set, no dispatch row: never enqueued); leader succeeded, they are
   * answered from its stored result (`succeeded`, `cached`); leader absent, failed, canceled or
   * expired, nothing is inserted (they must run on their own). One leader per statement: a
   * statement holding one row lock while it waits for no other cannot deadlock with a result write.
   */
  async insertFollowers(leader: FlightLeader, jobs: NewJob[], q: Queryable = this.pool): Promise<FollowResult> {
    const { rows } = await q.query<FollowResult>(
      `with l as (select id, status, result from jobs where id = $2 and "tenantId" = $3 and "cacheKey" = $4 for share),
       ins as (
         insert into jobs (id, "tenantId", model, version, priority, inputs, "requestedOutputs", metadata, webhook, "idempotencyKey", "requestHash",
           "createdAt", "cacheKey", "queueDeadline", "cancelAt", status, result, cached, "cacheLeader", "startedAt", "completedAt", "leadsFlight")
         select x.id, x."tenantId", x.model, x.version, x.priority, x.inputs, coalesce(x."requestedOutputs", '{}'), x.metadata, x.webhook, x."idempotencyKey",
           x."requestHash", x."createdAt", x."cacheKey",
           case when l.status = 'succeeded' then null else x."queueDeadline" end, case when l.status = 'succeeded' then null else x."cancelAt" end,
           case when l.status = 'succeeded' then 'succeeded'::"JobStatus" else 'queued'::"JobStatus" end,
           case when l.status = 'succeeded' then l.result end, l.status = 'succeeded', case when l.status = 'succeeded' then null else l.id end,
           case when l.status = 'succeeded' then now() end, case when l.status = 'succeeded' then now() end, false
         from json_to_recordset($1::json) as x(${NEW_JOB_COLUMNS}) cross join l
         where l.status in ('queued', 'running', 'succeeded')
         returning ${finishedColumns()}, result)
       select (select status from l) as "leaderStatus", coalesce((select json_agg(ins) from ins), '[]'::json) as inserted`,
      [JSON.stringify(jobs.map((j) => ({ ...newJobRow(j), dispatchId: null }))), leader.id, leader.tenantId, leader.cacheKey],
    );
    return rows[0]!;
  }

  /**
   * Ends the followers of leaders that just succeeded or failed, in the transaction that wrote
   * the leaders' outcomes and in a later statement (READ COMMITTED: its snapshot sees followers
   * inserted under the leader's row lock up to that write): followers of a succeeded leader
   * succeed with its result (`cached`), those of a failed one fail with its error (same input,
   * same model; the caller passes only leaders whose failure was their input's, and releases the
   * others' followers). Returns them as finished, for their events.
   */
  async finishFollowers(leaderIds: string[], q: Queryable = this.pool): Promise<FinishedJob[]> {
    if (leaderIds.length === 0) return [];
    const { rows } = await q.query<FinishedJob>(
      `update jobs f set status = l.status, result = l.result, "errorCode" = l."errorCode", "errorMessage" = l."errorMessage", cached = (l.status = 'succeeded'),
         "cacheLeader" = null, "startedAt" = coalesce(f."startedAt", now()), "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
       from jobs l
       where f."cacheLeader" = any($1::uuid[]) and f.status = 'queued' and l.id = f."cacheLeader" and l.status in ('succeeded', 'failed')
       returning ${finishedColumns("f.")}`,
      [leaderIds],
    );
    return rows;
  }

  /**
   * Releases the followers of leaders that ended without a run's outcome of their input (canceled,
   * expired, or failed for another reason than their input: see isInputFault), in
   * the transaction that ended them and in a later statement (see finishFollowers): each loses
   * its leader and joins a queue entry of its own tenant, model, version and priority (new
   * dispatch rows of at most `entrySize` jobs). The caller adds the queue entries after commit;
   * should that fail, the reconciler finds the rows. A follower's own cancel, queue deadline and
   * Cancel-After apply as before (it is a plain queued job).
   */
  async releaseFollowers(leaderIds: string[], entrySize = 256, q: Queryable = this.pool): Promise<ReleasedFollowers[]> {
    if (leaderIds.length === 0) return [];
    const { rows } = await q.query<ReleasedFollowers>(
      `with f as (select id, "tenantId", model, version, priority from jobs where "cacheLeader" = any($1::uuid[]) and status = 'queued' for update),
       parts as (select *, (row_number() over (partition by "tenantId", model, version, priority order by id) - 1) / $2 as part from f),
       g as (select gen_random_uuid() as "dispatchId", "tenantId", model, version, priority, array_agg(id) as "jobIds" from parts group by "tenantId", model, version, priority, part),
       moved as (update jobs j set "cacheLeader" = null, "dispatchId" = g."dispatchId" from g where j.id = any(g."jobIds")),
       added as (insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
         select "dispatchId", model, version, priority, cardinality("jobIds"), "jobIds", "tenantId" from g)
       select * from g`,
      [leaderIds, entrySize],
    );
    return rows;
  }

  /** One job of a tenant. Raw SQL: this is the polling hot path, where Prisma's per-query cost showed. */
  async get(tenantId: string, id: string): Promise<Job | null> {
    const { rows } = await this.pool.query<Job>(`select * from jobs where id = $1 and "tenantId" = $2`, [id, tenantId]);
    return rows[0] ?? null;
  }

  /** The tenant's job stored under an Idempotency-Key. Raw SQL: every retry of a keyed submit reads it. */
  async findByIdempotencyKey(tenantId: string, key: string): Promise<Job | null> {
    const { rows } = await this.pool.query<Job>({
      name: "inferline.jobs.by-idempotency-key",
      text: `select * from jobs where "tenantId" = $1 and "idempotencyKey" = $2`,
      values: [tenantId, key],
    });
    return rows[0] ?? null;
  }

  /** Frees an idempotency key older than its retention so that it can be used again. */
  async releaseIdempotencyKey(jobId: string): Promise<void> {
    await this.pool.query(`update jobs set "idempotencyKey" = null where id = $1`, [jobId]);
  }

  /** Which of `ids` are stored: after a write whose commit went unanswered, what it did. */
  async existing(ids: string[]): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>(`select id from jobs where id = any($1::uuid[])`, [ids]);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * A page of the tenant's jobs, newest first; `nextCursor` continues after the page (see
   * listStatement). With a status filter a page reads at most `listScanRows` jobs, so it may hold
   * fewer than `limit` (even none) while `nextCursor` is not null.
   */
  async list(tenantId: string, query: JobListQuery): Promise<{ jobs: JobViewFields[]; nextCursor: string | null }> {
    const { rows } = await this.pool.query<ListedRow>(listStatement(tenantId, query, this.listScanRows));
    const { items, end } = splitPage(rows, query.limit);
    return { jobs: items, nextCursor: end ? encodeCursor(end) : null };
  }
}

/**
 * The id of the entry JobStore.isolate moves `jobId` of `entryId` onto: a name-based UUID
 * (RFC 9562 version 5 layout over SHA-1 of both ids), the same each time for the same pair.
 */
function isolationEntryId(entryId: string, jobId: string): string {
  const b = crypto.createHash("sha1").update(`${entryId}/${jobId}`).digest();
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex", 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The outcomes as JSON documents for json_to_recordset, each under FINISH_STATEMENT_BYTES (one
 * outcome larger than that goes alone). Results are spliced in as the text they already are.
 */
function outcomeDocuments(outcomes: JobOutcome[]): string[] {
  const documents: string[] = [];
  let rows: string[] = [];
  let bytes = 0;
  for (const o of outcomes) {
    const row =
      o.status === "succeeded"
        ? `{"id":${JSON.stringify(o.id)},"status":"succeeded","result":${o.resultJson}}`
        : JSON.stringify({ id: o.id, status: o.status, errorCode: o.errorCode, errorMessage: o.errorMessage });
    if (rows.length > 0 && bytes + row.length > FINISH_STATEMENT_BYTES) {
      documents.push(`[${rows.join(",")}]`);
      rows = [];
      bytes = 0;
    }
    rows.push(row);
    bytes += row.length + 1;
  }
  documents.push(`[${rows.join(",")}]`);
  return documents;
}

/**
 * Answered jobs as JSON documents for json_to_recordset, at most INSERT_CHUNK rows and about
 * FINISH_STATEMENT_BYTES each, every cached result spliced in as the text it is.
 */
function answeredDocuments(jobs: AnsweredJob[]): string[] {
  const documents: string[] = [];
  let rows: string[] = [];
  let bytes = 0;
  for (const { resultJson, ...job } of jobs) {
    const fields = JSON.stringify({ ...job, dispatchId: null, queueDeadline: null, cancelAt: null });
    const row = `${fields.slice(0, -1)},"result":${resultJson}}`;
    if (rows.length > 0 && (rows.length >= INSERT_CHUNK || bytes + row.length > FINISH_STATEMENT_BYTES)) {
      documents.push(`[${rows.join(",")}]`);
      rows = [];
      bytes = 0;
    }
    rows.push(row);
    bytes += row.length + 1;
  }
  if (rows.length > 0) documents.push(`[${rows.join(",")}]`);
  return documents;
}

interface DispatchRow {
  id: string;
  model: string;
  version: string;
  priority: JobPriority;
  jobs: number;
  jobIds: string[];
  /** An entry carries one tenant's jobs (SubmitWriter plans per tenant). */
  tenantId: string;
}

/**
 * A job as the inserts' JSON documents hold it (NEW_JOB_COLUMNS): timestamps already as text, and
 * one literal so every row has one shape. JSON.stringify leaves its fast path for a Date (its
 * toJSON), which made the document cost twice as much per job (2.9 against 1.7 µs, measured in the
 * API under the submit bench).
 */
function newJobRow(j: NewJob) {
  return {
    id: j.id,
    tenantId: j.tenantId,
    model: j.model,
    version: j.version,
    priority: j.priority,
    inputs: j.inputs,
    requestedOutputs: j.requestedOutputs,
    metadata: j.metadata,
    webhook: j.webhook,
    idempotencyKey: j.idempotencyKey,
    requestHash: j.requestHash,
    dispatchId: j.dispatchId,
    queueDeadline: j.queueDeadline?.toISOString() ?? null,
    cancelAt: j.cancelAt?.toISOString() ?? null,
    createdAt: j.createdAt.toISOString(),
    cacheKey: j.cacheKey ?? null,
    traceParent: j.traceParent ?? null,
    leadsFlight: j.leadsFlight ?? null,
  };
}

function dispatchRows(jobs: NewJob[]): DispatchRow[] {
  const rows = new Map<string, DispatchRow>();
  for (const j of jobs) {
    if (!j.dispatchId) continue;
    const row = rows.get(j.dispatchId);
    if (row) {
      row.jobs++;
      row.jobIds.push(j.id);
    } else rows.set(j.dispatchId, { id: j.dispatchId, model: j.model, version: j.version, priority: j.priority, jobs: 1, jobIds: [j.id], tenantId: j.tenantId });
  }
  return [...rows.values()];
}

/**
 * A job just finished by a run's `outcome`, as a FinishedJob with its view (viewJson) as
 * toJobView shows it; the result is spliced in as the worker's JSON text, not parsed again (it
 * comes last in toJobView's order for a result of a run, which is never `cached`). No view for a
 * result over ANNOUNCED_RESULT_BYTES.
 */
function announced({ version, priority, createdAt, attempts, metadata, startedAt, completedAt, ...job }: FinishedRow, outcome: JobOutcome | undefined): FinishedJob {
  if (!outcome || (outcome.status === "succeeded" && outcome.resultJson.length > ANNOUNCED_RESULT_BYTES)) return job;
  const failed = outcome.status === "failed";
  const error = { errorCode: failed ? outcome.errorCode : null, errorMessage: failed ? outcome.errorMessage : null };
  const view = JSON.stringify(toJobView({ ...job, version, priority, createdAt, attempts, metadata, startedAt, completedAt, result: null, cached: false, ...error }));
  return { ...job, viewJson: failed ? view : `${view.slice(0, -1)},"result":${outcome.resultJson}}` };
}

/** The fields of a job that its view shows. */
type JobViewFields = Pick<
  Job,
  "id" | "status" | "model" | "version" | "priority" | "createdAt" | "attempts" | "metadata" | "startedAt" | "completedAt" | "result" | "cached" | "errorCode" | "errorMessage"
>;

/** The job as the API shows it. */
export function toJobView(job: JobViewFields): JobView {
  const view: JobView = {
    id: job.id,
    status: job.status,
    model: job.model,
    version: job.version,
    priority: job.priority,
    createdAt: job.createdAt.toISOString(),
    attempts: job.attempts,
    metadata: job.metadata as Record<string, string>,
  };
  if (job.startedAt) view.startedAt = job.startedAt.toISOString();
  if (job.completedAt) view.completedAt = job.completedAt.toISOString();
  if (job.result) view.result = job.result as unknown as InferenceResult;
  if (job.cached) view.cached = true;
  if (job.errorCode) view.error = { code: job.errorCode, message: job.errorMessage ?? "" };
  return view;
}
