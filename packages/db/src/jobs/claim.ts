import type pg from "pg";
import type { FlatTensor } from "@inferline/contracts";
import { columnList, typedNulls, type JobField } from "./columns.ts";
import { RELAXED_COMMIT } from "./finished.ts";

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

/** The columns of a ClaimedJob but `standalone`, which the claim computes. */
const CLAIMED_FIELDS: readonly JobField[] = [
  "tenantId",
  "model",
  "version",
  "inputs",
  "requestedOutputs",
  "attempts",
  "cacheKey",
  "traceParent",
];

const CLAIM_TEXT = `with ${RELAXED_COMMIT},
   claimed as (
     update jobs set status = 'running', attempts = attempts + 1, "startedAt" = coalesce("startedAt", now()), "queueDeadline" = null
     where id = any($1::uuid[]) and status in ('queued', 'running')
       and (status = 'running' or "queueDeadline" is null or "queueDeadline" > now()) and ("cancelAt" is null or "cancelAt" > now())
     returning id, ${columnList(CLAIMED_FIELDS)}, webhook is null and "leadsFlight" is false as standalone),
   started as (update dispatches set "startedAt" = coalesce("startedAt", now()) where id = $2::uuid and exists (select 1 from claimed)),
   -- The statement's snapshot, from before the update: the jobs it skipped for a deadline.
   overdue as (
     select id from jobs where (select count(*) from claimed) < cardinality($1::uuid[])
       and id = any($1::uuid[]) and status in ('queued', 'running') and ((status = 'queued' and "queueDeadline" <= now()) or "cancelAt" <= now()))
   select claimed.*, false as overdue from claimed cross join relaxed
   union all select id, ${typedNulls(CLAIMED_FIELDS)}, null::boolean, true from overdue`;

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
export async function claimJobs(pool: pg.Pool, ids: string[], entryId?: string): Promise<ClaimResult> {
  const { rows } = await pool.query<ClaimedJob & { overdue: boolean }>({
    name: "inferline.jobs.claim",
    text: CLAIM_TEXT,
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
 * Gives back claims of queue entry `entryId` whose runs were abandoned, not failed (the worker's
 * shutdown timeout passed): the jobs still `running` are `queued` again with the claim's attempt
 * taken back (its start time too, when it was their first), and the entry counts as not started.
 * Another worker then runs them as if this one never had. Their queue deadline, cleared by the
 * claim, stays cleared: they were started in time.
 */
export async function releaseClaims(pool: pg.Pool, ids: string[], entryId: string): Promise<void> {
  await pool.query(
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
export async function isQueued(pool: pg.Pool, id: string): Promise<boolean> {
  const text = `select status = 'queued' as queued from jobs where id = $1`;
  const { rows } = await pool.query<{ queued: boolean }>({ name: "inferline.jobs.is-queued", text, values: [id] });
  return rows[0]?.queued === true;
}
