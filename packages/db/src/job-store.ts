import crypto from "node:crypto";
import type pg from "pg";
import { InvalidCursorError, isUuid, type FlatTensor, type InferenceResult, type JobListQuery, type JobPriority, type JobStatus, type JobView, type WebhookSpec } from "@inferline/contracts";
import type { PrismaClient } from "./generated/prisma/client.ts";
import type { Queryable } from "./database.ts";
import type { Job } from "./generated/prisma/client.ts";

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
}

export interface ClaimedJob {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  inputs: FlatTensor[];
  requestedOutputs: string[];
  attempts: number;
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

/** A job that a statement just moved to a terminal state (so its events fire exactly once). */
export interface FinishedJob {
  id: string;
  tenantId: string;
  status: JobStatus;
  webhook: WebhookSpec | null;
}

const INSERT_CHUNK = 5000;

/**
 * The hot-path statements on `jobs`: each handles many rows in one round trip (unnest arrays),
 * because per-row statements would bound throughput long before the model does.
 */
export class JobStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly prisma: PrismaClient,
  ) {}

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
      await client.query(
        `with d as (
           insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
           select x.id, x.model, x.version, x.priority, x.jobs, x."jobIds", x."tenantId"
           from json_to_recordset($2::json) as x(id uuid, model text, version text, priority "JobPriority", jobs int, "jobIds" uuid[], "tenantId" uuid)
           on conflict (id) do update set jobs = dispatches.jobs + excluded.jobs, "jobIds" = dispatches."jobIds" || excluded."jobIds")
         insert into jobs (id, "tenantId", model, version, priority, inputs, "requestedOutputs", metadata, webhook,
           "idempotencyKey", "requestHash", "dispatchId", "queueDeadline", "cancelAt", "createdAt")
         select id, "tenantId", model, version, priority, inputs, coalesce("requestedOutputs", '{}'), metadata, webhook,
           "idempotencyKey", "requestHash", "dispatchId", "queueDeadline", "cancelAt", "createdAt"
         from json_to_recordset($1::json) as x(id uuid, "tenantId" uuid, model text, version text, priority "JobPriority",
           inputs json, "requestedOutputs" text[], metadata jsonb, webhook jsonb, "idempotencyKey" text, "requestHash" text,
           "dispatchId" uuid, "queueDeadline" timestamptz, "cancelAt" timestamptz, "createdAt" timestamptz)`,
        [JSON.stringify(chunk), JSON.stringify(dispatchRows(chunk))],
      );
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
   */
  async claim(ids: string[], entryId?: string): Promise<ClaimResult> {
    const { rows } = await this.pool.query<ClaimedJob & { overdue: boolean }>(
      `with claimed as (
         update jobs set status = 'running', attempts = attempts + 1, "startedAt" = coalesce("startedAt", now()), "queueDeadline" = null
         where id = any($1::uuid[]) and status in ('queued', 'running')
           and (status = 'running' or "queueDeadline" is null or "queueDeadline" > now()) and ("cancelAt" is null or "cancelAt" > now())
         returning id, "tenantId", model, version, inputs, "requestedOutputs", attempts),
       started as (update dispatches set "startedAt" = coalesce("startedAt", now()) where id = $2::uuid and exists (select 1 from claimed)),
       -- The statement's snapshot, from before the update: the jobs it skipped for a deadline.
       overdue as (
         select id from jobs where (select count(*) from claimed) < cardinality($1::uuid[])
           and id = any($1::uuid[]) and status in ('queued', 'running') and ((status = 'queued' and "queueDeadline" <= now()) or "cancelAt" <= now()))
       select *, false as overdue from claimed
       union all select id, null::uuid, null::text, null::text, null::json, null::text[], null::int, true from overdue`,
      [ids, entryId ?? null],
    );
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
       returning id, "tenantId", status, webhook`,
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
         returning j.id, j."tenantId", j.status, j.webhook),
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
         returning j.id, j."tenantId", j.status, j.webhook),
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
    if (outcomes.length === 0 && doneDispatches.length === 0) return [];
    const parts = outcomeDocuments(outcomes);
    const finished: FinishedJob[] = [];
    // Every part but the last writes results only; the last also forgets the processed entries.
    for (let i = 0; i < parts.length; i++) finished.push(...(await this.finishPart(parts[i]!, i === parts.length - 1 ? doneDispatches : [], q)));
    return finished;
  }

  private async finishPart(document: string, doneDispatches: string[], q: Queryable): Promise<FinishedJob[]> {
    const { rows } = await q.query<FinishedJob>(
      `with done as (
         update jobs j set status = v.status, result = v.result, "errorCode" = v."errorCode", "errorMessage" = v."errorMessage",
           "completedAt" = now(), "startedAt" = coalesce(j."startedAt", now()), "queueDeadline" = null, "cancelAt" = null
         from json_to_recordset($1::json) as v(id uuid, status "JobStatus", result json, "errorCode" text, "errorMessage" text)
         where j.id = v.id and j.status in ('queued', 'running')
         returning j.id, j."tenantId", j.status, j.webhook),
       -- The entries whose results these are: processed, so the reconciler forgets them.
       gone as (delete from dispatches where id = any($2::uuid[]))
       select * from done`,
      [document, doneDispatches],
    );
    return rows;
  }

  /**
   * Moves jobs of a queue entry onto entries of their own, one job each (a suspect of a crashed
   * worker, or a job whose run timed out, must not take the rest of its entry down with it
   * again): new dispatch rows, the jobs' dispatchId, and, with `removeEntry`, the old entry's
   * row. Jobs already terminal are left alone. The caller adds the queue entries; should that
   * fail, the reconciler finds the rows.
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
         select dispatch, model, version, priority, 1, array[id], "tenantId" from moved),
       gone as (delete from dispatches where id = $1 and $4::boolean)
       select id as "jobId", dispatch as "dispatchId", model, version, priority from moved`,
      [entryId, jobIds, jobIds.map(() => crypto.randomUUID()), options.removeEntry],
    );
    return rows;
  }

  /** Cancels a queued or running job of the tenant (its deadlines no longer apply). Returns it, or undefined when it was not cancelable. */
  async cancel(tenantId: string, id: string, q: Queryable = this.pool): Promise<FinishedJob | undefined> {
    const { rows } = await q.query<FinishedJob>(
      `update jobs set status = 'canceled', "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
       where id = $1 and "tenantId" = $2 and status in ('queued', 'running')
       returning id, "tenantId", status, webhook`,
      [id, tenantId],
    );
    return rows[0];
  }

  /** One job of a tenant. Raw SQL: this is the polling hot path, where Prisma's per-query cost showed. */
  async get(tenantId: string, id: string): Promise<Job | null> {
    const { rows } = await this.pool.query<Job>(`select * from jobs where id = $1 and "tenantId" = $2`, [id, tenantId]);
    return rows[0] ?? null;
  }

  async findByIdempotencyKey(tenantId: string, key: string): Promise<Job | null> {
    return this.prisma.job.findFirst({ where: { tenantId, idempotencyKey: key } });
  }

  /** Frees an idempotency key older than its retention so that it can be used again. */
  async releaseIdempotencyKey(jobId: string): Promise<void> {
    await this.prisma.job.update({ where: { id: jobId }, data: { idempotencyKey: null } });
  }

  /** Newest first; the cursor is the last row's (createdAt, id), so pages never skip or repeat. */
  async list(tenantId: string, query: JobListQuery): Promise<{ jobs: Job[]; nextCursor: string | null }> {
    const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    const jobs = await this.prisma.job.findMany({
      where: {
        tenantId,
        status: query.status,
        model: query.model,
        ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
      },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: query.limit + 1,
    });
    const more = jobs.length > query.limit;
    const page = more ? jobs.slice(0, query.limit) : jobs;
    const last = page[page.length - 1];
    return { jobs: page, nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null };
  }
}

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const createdAt = new Date(at);
    // A forged id would otherwise reach the uuid column and fail the statement.
    if (Number.isNaN(createdAt.getTime()) || typeof id !== "string" || !isUuid(id)) throw new Error("bad cursor");
    return { createdAt, id };
  } catch {
    throw new InvalidCursorError();
  }
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

/** The job as the API shows it. */
export function toJobView(job: Job): JobView {
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
  if (job.errorCode) view.error = { code: job.errorCode, message: job.errorMessage ?? "" };
  return view;
}
