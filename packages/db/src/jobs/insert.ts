import type { JobPriority } from "@inferline/contracts";
import type { Queryable } from "../database.ts";
import { INSERT_FIELDS, jobInsert, NEW_JOB_RECORDSET, type InsertField, type NewJob } from "./columns.ts";
import { DOCUMENT_BYTES, finishedColumns, type FinishedJob } from "./finished.ts";

/** A job answered from the result cache at submit: stored `succeeded` with the cached result (see JobStore.insertAnswered). */
export interface AnsweredJob extends NewJob {
  /** The cached result's JSON text, stored as it is. */
  resultJson: string;
  /** When it was answered: its start and completion time (the submit's answer shows the same). */
  answeredAt: Date;
}

const INSERT_CHUNK = 5000;

const QUEUED = jobInsert();
const INSERT_TEXT = `with d as (
     insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
     select x.id, x.model, x.version, x.priority, x.jobs, x."jobIds", x."tenantId"
     from json_to_recordset($2::json) as x(id uuid, model text, version text, priority "JobPriority", jobs int, "jobIds" uuid[], "tenantId" uuid)
     on conflict (id) do update set jobs = dispatches.jobs + excluded.jobs, "jobIds" = dispatches."jobIds" || excluded."jobIds")
   insert into jobs (${QUEUED.columns})
   select ${QUEUED.values}
   from json_to_recordset($1::json) as x(${NEW_JOB_RECORDSET})`;

/**
 * Inserts jobs, and the `dispatches` rows of their queue entries, in one statement per chunk.
 * Jobs without a dispatchId get no dispatch row (they are not meant for a queue yet). An entry
 * carries one tenant's jobs (SubmitWriter plans per tenant): its row is written with that
 * tenant, which the fair-share rank, the quota and the queue status read.
 */
export async function insertJobs(q: Queryable, jobs: NewJob[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += INSERT_CHUNK) {
    const chunk = jobs.slice(i, i + INSERT_CHUNK);
    // Rows travel as one JSON document: one native JSON.stringify instead of pg escaping every
    // element of a dozen parameter arrays, which showed up as the largest cost of a submit.
    await q.query({
      name: "inferline.jobs.insert",
      text: INSERT_TEXT,
      values: [JSON.stringify(chunk.map(newJobRow)), JSON.stringify(dispatchRows(chunk))],
    });
  }
}

const ANSWERED = jobInsert({
  dispatchId: "null",
  queueDeadline: "null",
  cancelAt: "null",
  status: `'succeeded'`,
  result: "x.result",
  cached: "true",
  startedAt: `x."answeredAt"`,
  completedAt: `x."answeredAt"`,
});
const INSERT_ANSWERED_TEXT = `insert into jobs (${ANSWERED.columns})
   select ${ANSWERED.values}
   from json_to_recordset($1::json) as x(${NEW_JOB_RECORDSET}, "answeredAt" timestamptz, result json)
   returning ${finishedColumns()}`;

/**
 * Inserts jobs answered from the result cache at submit: `succeeded` at once with the cached
 * result (its JSON text as it is), `cached`, started and completed when answered, no queue entry and no
 * dispatch row (they never reach a worker, the queue depth or a quota). Returns them as
 * finished, for their `job.succeeded` events (recorded in the caller's transaction).
 */
export async function insertAnsweredJobs(q: Queryable, jobs: AnsweredJob[]): Promise<FinishedJob[]> {
  const finished: FinishedJob[] = [];
  for (const document of answeredDocuments(jobs)) {
    const { rows } = await q.query<FinishedJob>(INSERT_ANSWERED_TEXT, [document]);
    finished.push(...rows);
  }
  return finished;
}

/**
 * Answered jobs as JSON documents for json_to_recordset, at most INSERT_CHUNK rows and about
 * DOCUMENT_BYTES each, every cached result spliced in as the text it is.
 */
function answeredDocuments(jobs: AnsweredJob[]): string[] {
  const documents: string[] = [];
  let rows: string[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const fields = JSON.stringify({ ...newJobRow(job), answeredAt: job.answeredAt.toISOString() });
    const row = `${fields.slice(0, -1)},"result":${job.resultJson}}`;
    if (rows.length > 0 && (rows.length >= INSERT_CHUNK || bytes + row.length > DOCUMENT_BYTES)) {
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

/**
 * A job as the inserts' JSON documents hold it (NEW_JOB_RECORDSET): every insert column, absent
 * ones null, so that every row has one shape; timestamps already as text, as JSON.stringify
 * leaves its fast path for a Date (its toJSON), which would double the document's cost per job
 * on the submit path.
 */
export function newJobRow(job: NewJob): Record<InsertField, unknown> {
  const row: Record<string, unknown> = {};
  for (const f of INSERT_FIELDS) {
    const value = job[f];
    row[f] = value instanceof Date ? value.toISOString() : (value ?? null);
  }
  return row;
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
    } else
      rows.set(j.dispatchId, {
        id: j.dispatchId,
        model: j.model,
        version: j.version,
        priority: j.priority,
        jobs: 1,
        jobIds: [j.id],
        tenantId: j.tenantId,
      });
  }
  return [...rows.values()];
}
