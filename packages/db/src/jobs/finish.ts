import type { Queryable } from "../database.ts";
import { DOCUMENT_BYTES, finishedColumns, RELAXED_COMMIT, type FinishedJob, type JobOutcome } from "./finished.ts";
import { ANNOUNCED_COLUMNS, ANNOUNCED_MAX_JOBS, announced, type FinishedRow } from "./views.ts";

/**
 * The text of one statement of a finish; `withViews` also returns the rest of each job's view
 * (FinishedRow); `relaxed` commits its transaction without waiting for the WAL flush (see
 * finishJobs).
 */
function finishText(withViews: boolean, relaxed: boolean): string {
  return `with ${relaxed ? `${RELAXED_COMMIT}, ` : ""}done as (
     update jobs j set status = v.status, result = v.result, "errorCode" = v."errorCode", "errorMessage" = v."errorMessage",
       "completedAt" = now(), "startedAt" = coalesce(j."startedAt", now()), "queueDeadline" = null, "cancelAt" = null
     from json_to_recordset($1::json) as v(id uuid, status "JobStatus", result json, "errorCode" text, "errorMessage" text)
     where j.id = v.id and j.status in ('queued', 'running')
     returning ${finishedColumns("j.")}${withViews ? `, ${ANNOUNCED_COLUMNS}` : ""}),
   -- The entries whose results these are: processed, so the reconciler forgets them.
   gone as (delete from dispatches where id = any($2::uuid[]))
   select done.* from done${relaxed ? " cross join relaxed" : ""}`;
}

/** The finish statements by `withViews` and `relaxed`: named, so prepared once per connection. */
const FINISH_STATEMENTS = [false, true].map((withViews) =>
  [false, true].map((relaxed) => ({
    name: `inferline.jobs.finish${withViews ? "-with-views" : ""}${relaxed ? "-relaxed" : ""}`,
    text: finishText(withViews, relaxed),
  })),
);

/**
 * Writes outcomes of many jobs, one statement per DOCUMENT_BYTES of them. Only jobs not yet
 * terminal are written, so a retried or duplicate attempt never overwrites a result or a cancel:
 * the visible outcome is exactly-once. A finished job's deadlines no longer apply and are cleared
 * (null stays null, so for jobs without one the update stays HOT). The processed entries'
 * dispatch rows go with the last statement. Returns the jobs this call finished, with their views
 * for a group small enough to announce them (ANNOUNCED_MAX_JOBS).
 *
 * `relaxed` (standalone jobs only: no webhook, no single flight led) commits each statement
 * without waiting for its WAL flush: a result is what can be computed again; should a PostgreSQL
 * crash lose the last few hundred ms of these commits, the jobs are queued or running again with
 * their entries' dispatch rows, which the reconciler re-queues, and they run again.
 */
export async function finishJobs(
  q: Queryable,
  outcomes: JobOutcome[],
  doneDispatches: string[],
  relaxed: boolean,
): Promise<FinishedJob[]> {
  if (outcomes.length === 0 && doneDispatches.length === 0) return [];
  const parts = outcomeDocuments(outcomes);
  // Views only for groups whose views could travel in one finished message.
  const byId = outcomes.length <= ANNOUNCED_MAX_JOBS ? new Map(outcomes.map((o) => [o.id, o])) : undefined;
  const statement = FINISH_STATEMENTS[Number(byId !== undefined)]![Number(relaxed)]!;
  const finished: FinishedJob[] = [];
  for (let i = 0; i < parts.length; i++) {
    // Every part but the last writes results only; the last also forgets the processed entries.
    const values = [parts[i]!, i === parts.length - 1 ? doneDispatches : []];
    const { rows } = await q.query<FinishedJob>({ ...statement, values });
    for (const row of rows) finished.push(byId ? announced(row as FinishedRow, byId.get(row.id)) : row);
  }
  return finished;
}

const FINISH_UNCLAIMED_TEXT = `with ${RELAXED_COMMIT}, done as (
     update jobs j set status = $2::"JobStatus", result = $3::json, "errorCode" = $4, "errorMessage" = $5,
       attempts = j.attempts + 1, "startedAt" = $7, "completedAt" = now()
     where j.id = $1::uuid and j.status = 'queued' and j."queueDeadline" is null and j."cancelAt" is null
     returning ${finishedColumns("j.")}, ${ANNOUNCED_COLUMNS}),
   gone as (delete from dispatches where id = $6::uuid and exists (select 1 from done))
   select done.* from done cross join relaxed`;

/**
 * Writes the outcome of a job that ran without a claim (a lone small job run straight from its
 * queue entry; see the worker's processor): only while it is still `queued`, and counting its
 * attempt, `startedAt` the time the run began. The entry's row goes with it. Returns the job,
 * with its view, or nothing when it was not queued any more (canceled, or claimed by another
 * run): the caller then takes the claim path, which decides what is left to do. Committed
 * without waiting for the WAL flush, as a relaxed finishJobs (such a job is standalone).
 */
export async function finishUnclaimed(
  q: Queryable,
  outcome: JobOutcome,
  dispatchId: string,
  startedAt: Date,
): Promise<FinishedJob[]> {
  // One row: plain parameters, not a json_to_recordset document, whose parsing would be a large
  // part of a one-row statement; this write is on a lone job's path to its answer.
  const succeeded = outcome.status === "succeeded";
  const { rows } = await q.query<FinishedRow>({
    name: "inferline.jobs.finish-unclaimed",
    text: FINISH_UNCLAIMED_TEXT,
    values: [
      outcome.id,
      outcome.status,
      succeeded ? outcome.resultJson : null,
      succeeded ? null : outcome.errorCode,
      succeeded ? null : outcome.errorMessage,
      dispatchId,
      startedAt,
    ],
  });
  return rows.map((row) => announced(row, outcome));
}

/**
 * The outcomes as JSON documents for json_to_recordset, each under DOCUMENT_BYTES (one outcome
 * larger than that goes alone). Results are spliced in as the text they already are.
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
    if (rows.length > 0 && bytes + row.length > DOCUMENT_BYTES) {
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
