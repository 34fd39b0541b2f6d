import type { InferenceResult, JobView } from "@inferline/contracts";
import type { Job } from "../generated/prisma/client.ts";
import {
  columnList,
  JOB_COLUMNS,
  VIEW_FIELDS,
  type Defaulted,
  type InsertField,
  type JobViewFields,
  type NewJob,
  type ViewField,
} from "./columns.ts";
import { FINISHED_FIELDS, type FinishedJob, type JobOutcome } from "./finished.ts";

/**
 * What a run's outcome decides, not the stored row (announced takes them from the outcome). The
 * view shows them last, the result first of them, so that a run's success's view, as JSON, is
 * the rest of its view with the result's text appended.
 */
const OUTCOME_FIELDS = ["result", "cached", "errorCode", "errorMessage"] as const satisfies readonly ViewField[];
type OutcomeField = (typeof OUTCOME_FIELDS)[number];
const isOutcome = (f: ViewField): f is OutcomeField => (OUTCOME_FIELDS as readonly ViewField[]).includes(f);

type ViewOf<F extends ViewField> = (typeof JOB_COLUMNS)[F]["view"];
/** The view's keys, from the table: a column's field name, but `error` for the error code's; none for the message's. */
type ViewKey = {
  [F in ViewField]: ViewOf<F> extends "message" ? never : ViewOf<F> extends "error" ? "error" : F;
}[ViewField];
/** The keys only a batch item's view has (see the batch items' itemView). */
type BatchItemKey = "batchId" | "customId";
type Agrees<Missing, Extra> = [Missing, Extra] extends [never, never] ? true : { missing: Missing; extra: Extra };
type Unshown = Exclude<keyof JobView, ViewKey | BatchItemKey>;
/** The table shows every key of the JobView contract but a batch item's, and no other: else this fails to compile. */
const _VIEW_AGREES: Agrees<Unshown, Exclude<ViewKey, keyof JobView>> = true;

/**
 * A job as toJobView reads it: a column the insert defaults may be absent (a NewJob built
 * without it), and is then not shown.
 */
type ViewSource = Omit<JobViewFields, Defaulted> & Partial<Pick<JobViewFields, Defaulted & ViewField>>;

type Shown = (job: ViewSource) => unknown;

function shown(f: ViewField): Shown | undefined {
  switch (JOB_COLUMNS[f].view) {
    case "value":
      return (job) => job[f] ?? undefined;
    case "time":
      return (job) => (job[f] as Date | null)?.toISOString();
    case "flag":
      return (job) => (job[f] === true ? true : undefined);
    case "error":
      return (job) => (job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? "" } : undefined);
    case "message":
      return undefined;
  }
}

/** Each shown column's key and value, in the view's order: the table's, the outcome last. */
const VIEW_ENTRIES = [...VIEW_FIELDS.filter((f) => !isOutcome(f)), ...VIEW_FIELDS.filter(isOutcome)].flatMap((f) => {
  const show = shown(f);
  return show ? [{ key: JOB_COLUMNS[f].view === "error" ? "error" : f, show }] : [];
});

/** The job as the API shows it (and as its webhook events and finished messages carry it). */
export function toJobView(job: ViewSource): JobView {
  const view: Record<string, unknown> = {};
  for (const { key, show } of VIEW_ENTRIES) {
    const value = show(job);
    if (value !== undefined) view[key] = value;
  }
  return view as JobView;
}

/** What an insert stores in the view's columns that a NewJob does not carry. */
const AS_INSERTED: Pick<JobViewFields, Exclude<ViewField, InsertField>> = {
  status: "queued",
  attempts: 0,
  startedAt: null,
  completedAt: null,
  result: null,
  cached: false,
  errorCode: null,
  errorMessage: null,
};

/**
 * The view's fields of a job as its insert stores them: `set`'s, else what the insert sets, else
 * the NewJob's. Copied field by field: spreading a NewJob into a literal takes V8's slow copy,
 * which cost more than the rest of a submit's view.
 */
function asInserted(job: NewJob, set: Partial<JobViewFields> = {}): ViewSource {
  const source: Record<string, unknown> = {};
  for (const f of VIEW_FIELDS)
    source[f] = f in set ? set[f] : f in AS_INSERTED ? AS_INSERTED[f as never] : job[f as never];
  return source as ViewSource;
}

/** A job as its insert stores it, as GET /v1/jobs/:id will show it. */
export function viewOfNewJob(job: NewJob): JobView {
  return toJobView(asInserted(job));
}

/** A job answered from the result cache, as GET /v1/jobs/:id will show it (see JobStore.insertAnswered). */
export function viewOfAnsweredJob(job: NewJob, result: InferenceResult, answeredAt: Date): JobView {
  const answered = {
    status: "succeeded",
    startedAt: answeredAt,
    completedAt: answeredAt,
    result: result as Job["result"],
    cached: true,
  } as const;
  return toJobView(asInserted(job, answered));
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

type FinishedField = (typeof FINISHED_FIELDS)[number];
type AnnouncedField = Exclude<ViewField, FinishedField | OutcomeField>;
const isFinished = (f: ViewField): boolean => (FINISHED_FIELDS as readonly string[]).includes(f);
const ANNOUNCED_FIELDS = VIEW_FIELDS.filter((f) => !isFinished(f) && !isOutcome(f)) as AnnouncedField[];

/**
 * What a statement that announces the jobs it finished returns of each: the FinishedJob, and the
 * rest of its view (ANNOUNCED_COLUMNS).
 */
export type FinishedRow = FinishedJob & Pick<Job, AnnouncedField>;

/** The columns of FinishedRow past FinishedJob's (of `jobs j`). */
export const ANNOUNCED_COLUMNS = columnList(ANNOUNCED_FIELDS, "j.");

/**
 * A job just finished by a run's `outcome`, as a FinishedJob with its view (viewJson) as
 * toJobView shows it; the result is spliced in as the worker's JSON text, not parsed again (it
 * comes last in the view of a run's success, see OUTCOME_FIELDS). No view for a result over
 * ANNOUNCED_RESULT_BYTES.
 */
export function announced(row: FinishedRow, outcome: JobOutcome | undefined): FinishedJob {
  const job: Record<string, unknown> = {};
  for (const f of FINISHED_FIELDS) job[f] = row[f];
  const finished = job as unknown as FinishedJob;
  if (!outcome || (outcome.status === "succeeded" && outcome.resultJson.length > ANNOUNCED_RESULT_BYTES))
    return finished;
  const failed = outcome.status === "failed";
  const error = { errorCode: failed ? outcome.errorCode : null, errorMessage: failed ? outcome.errorMessage : null };
  const view = JSON.stringify(toJobView({ ...row, result: null, cached: false, ...error }));
  return { ...finished, viewJson: failed ? view : `${view.slice(0, -1)},"result":${outcome.resultJson}}` };
}
