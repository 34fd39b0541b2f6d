// The client's request and response types. The shapes of the API come from its OpenAPI document
// (generated/api-schemas.ts, written from the server's zod schemas): the client carries no copy
// of them, and its published types need neither zod nor any workspace package.
import type * as Api from "./generated/api-schemas.ts";

export type {
  BatchItem as BatchItemInput,
  BatchListPage as BatchPage,
  BatchResultLine,
  BatchStatus,
  BatchView,
  InferenceResult,
  JobError,
  JobListPage as JobPage,
  JobPriority,
  JobStatus,
  JobSubmission as JobSubmissionInput,
  JobView,
  JobWebhooks,
  ModelView,
  QueueStatus,
  Tensor,
  TensorSpec,
  WebhookRedelivery,
  WebhookSecret,
} from "./generated/api-schemas.ts";

/** A v2 tensor's datatype. */
export type Datatype = Api.Tensor["datatype"];

/** An invalid field of a refused request: a JSON Pointer into the request, and what is wrong there. */
export type FieldFault = NonNullable<Api.Problem["errors"]>[number];

/** A job or batch's webhook: where events are delivered, and which (default: every one). */
export type WebhookTarget = NonNullable<Api.JobSubmission["webhook"]>;

/** The events a webhook can ask for. */
export type WebhookEventType = NonNullable<WebhookTarget["events"]>[number];

/** A batch's settings: everything of POST /v1/batches but its items. */
export type BatchHeaderInput = Omit<Api.BatchSubmission, "items">;

/**
 * Options every call takes, over the client's own settings: `timeout` bounds each attempt (a
 * long-poll adds the seconds it asks the API to hold it), `maxRetries` the further attempts after
 * a failure worth retrying, `signal` aborts the call (its reason is thrown).
 */
export interface RequestOptions {
  /** Milliseconds one attempt may wait for its answer. */
  timeout?: number;
  /** Further attempts after a retryable failure (0: none). */
  maxRetries?: number;
  signal?: AbortSignal;
}

/** `GET /v1/jobs` filters. */
export interface JobListFilter {
  status?: Api.JobStatus;
  model?: string;
  batchId?: string;
  /** Jobs per page (1 to 500; the server's default is 50). */
  limit?: number;
}

/** `GET /v1/batches` filters. */
export interface BatchListFilter {
  status?: Api.BatchStatus;
  model?: string;
  /** Batches per page (1 to 100; the server's default is 20). */
  limit?: number;
}

/** Per-request headers of a job or batch creation. */
export interface SubmitOptions extends RequestOptions {
  /** Same key and body within 24 h answers the first job or batch. Generated when not given (for a batch: when its items are an array). */
  idempotencyKey?: string;
  /** Cancel the work if it is not terminal after this long: seconds, or a duration such as `90s`, `5m`, `1h30m`. */
  cancelAfter?: number | string;
}

/** How long wait() may take: it long-polls (at most 60 s a request) until the work is terminal or the deadline passes. */
export interface WaitOptions extends RequestOptions {
  /** Total seconds to wait; without it, until terminal. At the deadline wait() returns the current, possibly unfinished, view. */
  timeoutSeconds?: number;
}

/** What `client.run()` takes besides the model and inputs: the job's own fields, its headers, and how long to wait. */
export type RunOptions = Omit<Api.JobSubmission, "model" | "inputs"> &
  SubmitOptions & {
    /** Seconds to wait for the job; past them it is canceled and run() throws JobFailedError. Default: until it ends. */
    timeoutSeconds?: number;
  };

/** A verified webhook delivery's body: a job's or a batch's event, told apart by `type`. */
export type WebhookEvent = Api.WebhookPayload;
