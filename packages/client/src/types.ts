// The client's request and response types. Shared shapes come from @inferline/contracts as types
// only (`import type` is erased), so that nothing of zod or the contracts' code loads at run time.
import type { BatchView, InferenceResult, JobError, JobPriority, JobStatus, JobView, Tensor, TensorSpec, WebhookEventType } from "@inferline/contracts";

export type { BatchStatus, BatchView, Datatype, FieldFault, FlatTensor, InferenceResult, JobError, JobPriority, JobStatus, JobView, Tensor, WebhookEventType } from "@inferline/contracts";

/** A webhook target; `events` defaults to every job event (or `batch.completed` for a batch). */
export interface WebhookTarget {
  url: string;
  events?: WebhookEventType[];
}

/** `POST /v1/jobs`' body as a caller writes it (priority and metadata have server defaults). */
export interface JobSubmissionInput {
  model: string;
  version?: string;
  inputs: Tensor[];
  outputs?: Array<{ name: string }>;
  webhook?: WebhookTarget;
  priority?: JobPriority;
  metadata?: Record<string, string>;
  maxQueueSeconds?: number;
  cache?: "bypass";
}

/** Per-request headers of a submit or a batch creation. */
export interface SubmitOptions {
  /** Same key and body within 24 h answers the first job or batch. Generated when not given (for a batch: when its items are an array). */
  idempotencyKey?: string;
  /** Cancel the work if it is not terminal after this long: seconds, or a duration such as `90s`, `5m`, `1h30m`. */
  cancelAfter?: number | string;
  signal?: AbortSignal;
}

/** Everything of a batch but its items. */
export interface BatchHeaderInput {
  model: string;
  version?: string;
  outputs?: Array<{ name: string }>;
  webhook?: WebhookTarget;
  priority?: JobPriority;
  metadata?: Record<string, string>;
  maxQueueSeconds?: number;
  cache?: "bypass";
}

/** One batch item. */
export interface BatchItemInput {
  customId?: string;
  inputs: Tensor[];
}

/** One line of `GET /v1/batches/:id/results`, in submission order. */
export interface BatchResultLine {
  index: number;
  customId: string | null;
  jobId: string;
  status: JobStatus;
  result?: InferenceResult;
  /** True when the item was answered from the model's result cache. */
  cached?: true;
  error?: JobError;
}

/** `GET /v1/jobs` filters. */
export interface JobListFilter {
  status?: JobStatus;
  model?: string;
  batchId?: string;
  /** Jobs per page (1 to 500; the server's default is 50). */
  limit?: number;
}

export interface JobPage {
  jobs: JobView[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

/** A model as `GET /v1/models/:name` shows it. */
export interface ModelView {
  name: string;
  description?: string;
  versions: string[];
  defaultVersion: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  batching?: { maxBatchSize: number; maxQueueDelayMs: number };
  maxRowsPerJob?: number;
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
