import { z } from "zod";
import { Tensor, type FlatTensor } from "./tensor.ts";
import { isStorableText, StorableText, UNSTORABLE_TEXT_MESSAGE } from "./text.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of jobs and batches are UUIDs; anything else is simply not found (never a database error). */
export const isUuid = (s: string): boolean => UUID.test(s);

/** `expired`: not started before its queue deadline (maxQueueSeconds); it never ran. */
export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "canceled", "expired"]);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled", "expired"];
export const isTerminal = (s: JobStatus): boolean => TERMINAL_STATUSES.includes(s);

export const JobPriority = z.enum(["high", "normal", "low"]);
export type JobPriority = z.infer<typeof JobPriority>;

export const WebhookEventType = z.enum(["job.succeeded", "job.failed", "job.canceled", "job.expired", "batch.completed"]);
export type WebhookEventType = z.infer<typeof WebhookEventType>;

export const WebhookSpec = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE }),
  events: z.array(WebhookEventType).min(1).optional(),
});
export type WebhookSpec = z.infer<typeof WebhookSpec>;

export const Metadata = z.record(StorableText.max(64), StorableText.max(512)).refine((m) => Object.keys(m).length <= 32, { message: "at most 32 keys" });

/**
 * How long work may wait for a worker before it expires, in seconds (1 s to 3 days). Unset: the
 * model's manifest `maxQueueSeconds`, else the operator's DEFAULT_MAX_QUEUE_SECONDS, else no limit.
 */
export const MaxQueueSeconds = z.number().int().min(1).max(259_200);

/** A requested output (v1 bodies are strict: an unknown field is a 422 naming it). */
/** `cache: "bypass"` on a job or batch: run the model even when its result cache holds the answer (the result is still stored). */
export const CacheMode = z.literal("bypass");
export type CacheMode = z.infer<typeof CacheMode>;

export const OutputRequest = z.strictObject({ name: z.string().min(1).max(128) });
export type OutputRequest = z.infer<typeof OutputRequest>;

export const JobSubmission = z.strictObject({
  model: z.string().min(1).max(64),
  version: z.string().min(1).max(64).optional(),
  inputs: z.array(Tensor).min(1).max(16),
  outputs: z.array(OutputRequest).max(16).optional(),
  webhook: WebhookSpec.optional(),
  priority: JobPriority.default("normal"),
  metadata: Metadata.default({}),
  maxQueueSeconds: MaxQueueSeconds.optional(),
  cache: CacheMode.optional(),
});
export type JobSubmission = z.infer<typeof JobSubmission>;

export interface JobError {
  code: string;
  message: string;
}

/** A v2 inference response, plus decoded classes where the model has labels. */
export interface InferenceResult {
  model_name: string;
  model_version: string;
  outputs: FlatTensor[];
  /** One entry per row of a classifier output with labels: the top label and every class's probability. */
  classifications?: Array<{ output: string; label: string; score: number; probabilities: Record<string, number> }>;
  /** Free-form decoded output from a post-processor (e.g. recognised text). */
  decoded?: unknown;
}

/** The job as `GET /v1/jobs/:id` returns it (and as webhooks carry it). */
export interface JobView {
  id: string;
  status: JobStatus;
  model: string;
  version: string;
  priority: JobPriority;
  createdAt: string;
  startedAt?: string;
  completedAt?: string;
  attempts: number;
  metadata: Record<string, string>;
  batchId?: string;
  customId?: string;
  result?: InferenceResult;
  /** Present (true) when the result came from the model's result cache, not from a run. */
  cached?: true;
  error?: JobError;
}

export const JobListQuery = z.strictObject({
  status: JobStatus.optional(),
  model: StorableText.max(64).optional(),
  batchId: z.string().uuid().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(512).optional(),
});
export type JobListQuery = z.infer<typeof JobListQuery>;

export const WaitQuery = z.strictObject({
  wait: z.coerce.number().min(0).max(60).optional(),
});
