import type { FlatTensor, JobSubmission } from "@inferline/contracts";
import type { Job } from "../generated/prisma/client.ts";

/**
 * How GET /v1/jobs/:id shows a column (see toJobView): `value` as stored, `time` as ISO 8601
 * text, each when not null; `flag` as `true` when true, else not at all; `error` (the error code)
 * as `error: {code, message}` with the column marked `message`, which is not shown on its own.
 */
export type ColumnView = "value" | "time" | "flag" | "error" | "message";

/** What the code knows of a column of `jobs`; JOB_COLUMNS has one per field of the Prisma model. */
export interface JobColumn {
  /** Its SQL type: what an insert document declares it as, and what a typed null is cast to. */
  readonly type: string;
  /** Its SQL name, when schema.prisma maps the field to another (`@map`). */
  readonly name?: string;
  /**
   * Whether the inserts write it from the NewJob: `submitted`, as the request gives it (the API
   * copies it, see submittedFields; absent there: null); `job`, set by whoever builds the NewJob.
   */
  readonly insert?: "submitted" | "job";
  /** What an insert writes when the NewJob's field is null or absent (SQL). */
  readonly orElse?: string;
  /** How the job's view shows it; absent: not shown. */
  readonly view?: ColumnView;
}

/**
 * The columns of `jobs`, the one place that says which the inserts write, which the view shows
 * and how. Every list of columns a statement names, the insert documents' rows, the view (the
 * API's answers, the finished message's, the webhook payloads) and the fields the API copies from
 * a request derive from it. The view shows its columns in this order, the outcome last (see
 * OUTCOME_FIELDS). A field of the Prisma model without an entry here does not compile.
 */
export const JOB_COLUMNS = {
  id: { type: "uuid", insert: "job", view: "value" },
  status: { type: `"JobStatus"`, view: "value" },
  model: { type: "text", insert: "job", view: "value" },
  version: { type: "text", insert: "job", view: "value" },
  priority: { type: `"JobPriority"`, insert: "submitted", view: "value" },
  createdAt: { type: "timestamptz", insert: "job", view: "time" },
  attempts: { type: "int", view: "value" },
  metadata: { type: "jsonb", insert: "submitted", view: "value" },
  startedAt: { type: "timestamptz", view: "time" },
  completedAt: { type: "timestamptz", view: "time" },
  result: { type: "json", view: "value" },
  cached: { type: "boolean", view: "flag" },
  errorCode: { type: "text", view: "error" },
  errorMessage: { type: "text", view: "message" },
  tenantId: { type: "uuid", insert: "job" },
  inputs: { type: "json", insert: "job" },
  requestedOutputs: { type: "text[]", insert: "job", orElse: `'{}'` },
  webhook: { type: "jsonb", insert: "submitted" },
  idempotencyKey: { type: "text", insert: "job" },
  requestHash: { type: "text", insert: "job" },
  dispatchId: { type: "uuid", insert: "job" },
  queueDeadline: { type: "timestamptz", insert: "job" },
  cancelAt: { type: "timestamptz", insert: "job" },
  cacheKey: { type: "text", insert: "job" },
  cacheLeader: { type: "uuid" },
  leadsFlight: { type: "boolean", insert: "job", orElse: "false" },
  traceParent: { type: "text", name: "trace_parent", insert: "job" },
} as const satisfies { readonly [F in keyof Job]: JobColumn };

type Columns = typeof JOB_COLUMNS;
export type JobField = keyof Columns;
type FieldsWhere<P> = { [F in JobField]: Columns[F] extends P ? F : never }[JobField];
/** The fields the inserts write from a NewJob. */
export type InsertField = FieldsWhere<{ insert: string }>;
/** The fields a job takes from its request as they are. */
export type SubmittedField = FieldsWhere<{ insert: "submitted" }>;
/** The fields the view reads. */
export type ViewField = FieldsWhere<{ view: string }>;

const FIELDS = Object.keys(JOB_COLUMNS) as JobField[];
const column = (f: JobField): JobColumn => JOB_COLUMNS[f];
export const INSERT_FIELDS = FIELDS.filter((f) => column(f).insert !== undefined) as InsertField[];
export const SUBMITTED_FIELDS = FIELDS.filter((f) => column(f).insert === "submitted") as SubmittedField[];
/** The fields the view reads, in the table's order. */
export const VIEW_FIELDS = FIELDS.filter((f) => column(f).view !== undefined) as ViewField[];

/** The fields of a job its view reads (see toJobView). */
export type JobViewFields = Pick<Job, ViewField>;

type Absent<F extends keyof JobSubmission> = undefined extends JobSubmission[F] ? null : never;
/** A request's field as a NewJob holds it: absent from the request, null. */
type Submitted<F extends keyof JobSubmission> = Exclude<JobSubmission[F], undefined> | Absent<F>;
/** The columns whose insert writes a default (their `orElse`) when the NewJob leaves them out. */
export type Defaulted = FieldsWhere<{ orElse: string }>;

/**
 * The request's fields a job takes as they are (see submittedFields); optional where the insert
 * has a default (so that jobs built elsewhere, in tests and benchmarks, need not name them).
 */
export type SubmittedFields = { [F in Exclude<SubmittedField, Defaulted> & keyof JobSubmission]: Submitted<F> } & {
  [F in SubmittedField & Defaulted & keyof JobSubmission]?: Submitted<F>;
};

/** A job as the inserts write it: the table's insert columns, those from the request typed as its. */
export interface NewJob extends SubmittedFields {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  inputs: FlatTensor[];
  requestedOutputs: string[];
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

/** Holds when both are never; otherwise the type names what is off, so the assignment below fails to compile. */
type Agrees<Missing, Extra> = [Missing, Extra] extends [never, never] ? true : { missing: Missing; extra: Extra };
/** NewJob carries exactly the insert columns, and the request has every column the table says it gives. */
const _NEW_JOB_AGREES: Agrees<Exclude<InsertField, keyof NewJob>, Exclude<keyof NewJob, InsertField>> = true;
const _SUBMITTED_AGREES: Agrees<Exclude<SubmittedField, keyof JobSubmission>, never> = true;

/** The request's fields a job takes as they are (the table's `submitted` columns); absent: null. */
export function submittedFields(body: JobSubmission): SubmittedFields {
  const fields: Record<string, unknown> = {};
  for (const f of SUBMITTED_FIELDS) fields[f] = body[f as keyof JobSubmission] ?? null;
  return fields as SubmittedFields;
}

/** A field's name as SQL reads it: quoted unless it is all lower case. */
const quoted = (name: string): string => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name}"`);

/** The SQL name of a field's column. */
export const columnName = (f: JobField): string => column(f).name ?? quoted(f);

/** A select or returning list of the fields' columns (each prefixed with `t`), each read under its field's name. */
export function columnList(fields: readonly JobField[], t = ""): string {
  const read = (f: JobField) => (column(f).name ? `${t}${columnName(f)} as ${quoted(f)}` : `${t}${columnName(f)}`);
  return fields.map(read).join(", ");
}

/** Typed nulls in the fields' column types: a union's row that has none of them. */
export const typedNulls = (fields: readonly JobField[]): string =>
  fields.map((f) => `null::${column(f).type}`).join(", ");

/** The columns of a json_to_recordset document of NewJob rows (see newJobRow), under their field names. */
export const NEW_JOB_RECORDSET = INSERT_FIELDS.map((f) => `${quoted(f)} ${column(f).type}`).join(", ");

/**
 * An insert into `jobs` from a json_to_recordset document `x` of NewJob rows: its column list and
 * the select list that fills it, every insert column from its field (or its `orElse`), but where
 * `values` gives another expression, and the columns `values` adds.
 */
export function jobInsert(values: Partial<Record<JobField, string>> = {}): { columns: string; values: string } {
  const fields = [...new Set([...INSERT_FIELDS, ...(Object.keys(values) as JobField[])])];
  const fromDocument = (f: JobField) =>
    column(f).orElse ? `coalesce(x.${quoted(f)}, ${column(f).orElse})` : `x.${quoted(f)}`;
  return {
    columns: fields.map(columnName).join(", "),
    values: fields.map((f) => values[f] ?? fromDocument(f)).join(", "),
  };
}
