import type { JobStatus, WebhookSpec } from "@inferline/contracts";
import { columnList, type JobField } from "./columns.ts";

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

/** The columns every statement that ends jobs returns (see FinishedJob). */
export const FINISHED_FIELDS = [
  "id",
  "tenantId",
  "status",
  "webhook",
  "model",
  "cacheKey",
] as const satisfies readonly JobField[];

/** FINISHED_FIELDS as a returning list (columns prefixed with `t`). */
export const finishedColumns = (t = ""): string => columnList(FINISHED_FIELDS, t);

/** finishedColumns, and the job's queue entry: what the statements that end jobs without a run return. */
export const endedColumns = (t = ""): string => columnList([...FINISHED_FIELDS, "dispatchId"], t);

/**
 * A job's outcome. A result travels as its JSON text, serialised once per job by the worker
 * (which checks its size), so that no statement ever builds one string out of a whole group's
 * results.
 */
export type JobOutcome =
  | { id: string; status: "succeeded"; resultJson: string }
  | { id: string; status: "failed"; errorCode: string; errorMessage: string };

/** Most bytes of JSON one statement's document carries (results, cached results); a larger group is written in several. */
export const DOCUMENT_BYTES = 32 * 1024 * 1024;

/**
 * A statement's CTE that commits its transaction without waiting for the WAL flush
 * (synchronous_commit off, local to the transaction). For writes a crash may lose because they
 * are redone (a claim, a standalone result); the statement must reference `relaxed`, or
 * PostgreSQL never evaluates it.
 */
export const RELAXED_COMMIT = `relaxed as (select set_config('synchronous_commit', 'off', true))`;
