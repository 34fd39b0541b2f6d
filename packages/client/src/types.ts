// The client's request and response types. Shared shapes come from @inferline/contracts as types
// only (`import type` is erased), so that nothing of zod or the contracts' code loads at run time.
import type { BatchView, JobListPage, JobStatus, JobView } from "@inferline/contracts";

export type {
  BatchHeaderInput,
  BatchItemInput,
  BatchResultLine,
  BatchStatus,
  BatchView,
  Datatype,
  FieldFault,
  FlatTensor,
  InferenceResult,
  JobError,
  JobPriority,
  JobStatus,
  JobSubmissionInput,
  JobView,
  ModelView,
  Tensor,
  WebhookEventType,
  WebhookTarget,
} from "@inferline/contracts";

/** A page of `GET /v1/jobs`. */
export type JobPage = JobListPage;

/** `GET /v1/jobs` filters. */
export interface JobListFilter {
  status?: JobStatus;
  model?: string;
  batchId?: string;
  /** Jobs per page (1 to 500; the server's default is 50). */
  limit?: number;
}

/** Per-request headers of a submit or a batch creation. */
export interface SubmitOptions {
  /** Same key and body within 24 h answers the first job or batch. Generated when not given (for a batch: when its items are an array). */
  idempotencyKey?: string;
  /** Cancel the work if it is not terminal after this long: seconds, or a duration such as `90s`, `5m`, `1h30m`. */
  cancelAfter?: number | string;
  signal?: AbortSignal;
}

/** A verified webhook delivery's body. */
export type WebhookEvent =
  { type: "job.succeeded" | "job.failed" | "job.canceled" | "job.expired"; timestamp: string; data: JobView } | { type: "batch.completed"; timestamp: string; data: BatchView };

/** How long wait() may take: it long-polls (at most 60 s a request) until the work is terminal or the deadline passes. */
export interface WaitOptions {
  /** Total seconds to wait; without it, until terminal. At the deadline wait() returns the current, possibly unfinished, view. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}
