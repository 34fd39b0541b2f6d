import type { InferenceResult, JobPriority, JobStatus } from "@inferline/contracts";
import type { Queryable } from "../database.ts";
import { jobInsert, NEW_JOB_RECORDSET, type NewJob } from "./columns.ts";
import { finishedColumns, type FinishedJob } from "./finished.ts";
import { newJobRow } from "./insert.ts";

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

/** A follower of the leader `l`: answered when `l` succeeded, else waiting for its run. */
const answered = (then: string, otherwise: string) =>
  `case when l.status = 'succeeded' then ${then} else ${otherwise} end`;
const FOLLOWER = jobInsert({
  dispatchId: "null",
  queueDeadline: answered("null", `x."queueDeadline"`),
  cancelAt: answered("null", `x."cancelAt"`),
  status: answered(`'succeeded'::"JobStatus"`, `'queued'::"JobStatus"`),
  result: answered("l.result", "null"),
  cached: "l.status = 'succeeded'",
  cacheLeader: answered("null", "l.id"),
  startedAt: answered("now()", "null"),
  completedAt: answered("now()", "null"),
  leadsFlight: "false",
});
const INSERT_FOLLOWERS_TEXT = `with l as (select id, status, result from jobs where id = $2 and "tenantId" = $3 and "cacheKey" = $4 for share),
   ins as (
     insert into jobs (${FOLLOWER.columns})
     select ${FOLLOWER.values}
     from json_to_recordset($1::json) as x(${NEW_JOB_RECORDSET}) cross join l
     where l.status in ('queued', 'running', 'succeeded')
     returning ${finishedColumns()}, result)
   select (select status from l) as "leaderStatus", coalesce((select json_agg(ins) from ins), '[]'::json) as inserted`;

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
export async function insertFollowers(q: Queryable, leader: FlightLeader, jobs: NewJob[]): Promise<FollowResult> {
  const document = JSON.stringify(jobs.map(newJobRow));
  const { rows } = await q.query<FollowResult>(INSERT_FOLLOWERS_TEXT, [
    document,
    leader.id,
    leader.tenantId,
    leader.cacheKey,
  ]);
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
export async function finishFollowers(q: Queryable, leaderIds: string[]): Promise<FinishedJob[]> {
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
export async function releaseFollowers(
  q: Queryable,
  leaderIds: string[],
  entrySize: number,
): Promise<ReleasedFollowers[]> {
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
