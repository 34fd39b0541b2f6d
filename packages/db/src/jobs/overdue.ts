import type { Queryable } from "../database.ts";
import { endedColumns, type FinishedJob } from "./finished.ts";

/**
 * Whether an overdue job (see endOverdue) expires rather than being canceled: still queued, past
 * its queue deadline, and that deadline came no later than its Cancel-After time.
 */
const EXPIRES = `(status = 'queued' and "queueDeadline" <= now() and ("cancelAt" is null or "queueDeadline" <= "cancelAt"))`;

/** The error message of an expired job (its row's columns, before the update clears the deadline). */
const EXPIRY_MESSAGE = `format('not started within its queue deadline of %s s (maxQueueSeconds)', round(extract(epoch from "queueDeadline" - "createdAt")))`;

/** One page of a deadline sweep: how many rows it took (a full page means there may be more), and the jobs it ended. */
export interface SweptPage {
  due: number;
  finished: FinishedJob[];
}

/**
 * Ends the given jobs that are past a deadline, in the caller's transaction: a queued job past
 * its queue deadline expires (`deadline_exceeded`), any other job not yet terminal past its
 * Cancel-After time is canceled; when both passed, the earlier decides. What a claim skipped
 * (see claimJobs) comes here; jobs that are not overdue are left alone.
 */
export async function endOverdue(q: Queryable, ids: string[]): Promise<FinishedJob[]> {
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
 * the others only lose the deadline, which no longer applies.
 */
export async function expireOverdue(q: Queryable, limit: number): Promise<SweptPage> {
  const { rows } = await q.query<SweptPage>(
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
export async function cancelOverdue(q: Queryable, limit: number): Promise<SweptPage> {
  const { rows } = await q.query<SweptPage>(
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
