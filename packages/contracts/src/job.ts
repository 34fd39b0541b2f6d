import { z } from "zod";
import { Datatype } from "./datatypes.ts";
import { Tensor } from "./tensor.ts";
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

export const WebhookEventType = z.enum([
  "job.succeeded",
  "job.failed",
  "job.canceled",
  "job.expired",
  "batch.completed",
]);
export type WebhookEventType = z.infer<typeof WebhookEventType>;

export const WebhookSpec = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE }),
  events: z.array(WebhookEventType).min(1).optional(),
});
export type WebhookSpec = z.infer<typeof WebhookSpec>;

export const Metadata = z
  .record(StorableText.max(64), StorableText.max(512))
  .refine((m) => Object.keys(m).length <= 32, { message: "at most 32 keys" });

/**
 * How long work may wait for a worker before it expires, in seconds (1 s to 3 days). Unset: the
 * model's manifest `maxQueueSeconds`, else the operator's DEFAULT_MAX_QUEUE_SECONDS, else no limit.
 */
export const MaxQueueSeconds = z.number().int().min(1).max(259_200);

/** A requested output (v1 bodies are strict: an unknown field is a 422 naming it). */
/**
 * How a job or batch uses its model's result cache; absent, it is looked up and the run's result
 * stored. `bypass`: run the model even when the cache holds the answer, and store the result (a
 * refresh). `off`: run it and leave the cache alone, no lookup and nothing stored (bulk scoring
 * of rows that will not come again, which would only fill the cache and pay for it per row).
 */
export const CacheMode = z.enum(["bypass", "off"]);
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
/**
 * What the schema fills in on a submission that leaves fields out (priority, metadata, ...): for
 * code that builds a submission itself rather than parsing one, so a new defaulted field needs no
 * change there.
 */
export const SUBMISSION_DEFAULTS = JobSubmission.omit({ model: true, inputs: true }).parse({});
/** A job submission as a client writes it (fields with server defaults optional). */
export type JobSubmissionInput = z.input<typeof JobSubmission>;
/** A webhook target as a client writes it. */
export type WebhookTarget = z.input<typeof WebhookSpec>;

/** An instant as the API writes it: ISO 8601 in UTC with milliseconds (Date#toISOString). */
export const Timestamp = z.iso
  .datetime()
  .meta({ description: "ISO 8601, UTC", examples: ["2026-01-05T10:00:00.000Z"] });

export const JobError = z
  .object({
    code: z.string().meta({
      description:
        "A stable machine-readable code: `deadline_exceeded`, `canceled`, `inference_failed`, `inference_timeout`…",
    }),
    message: z.string(),
  })
  .meta({ description: "Why a job did not succeed" });
export type JobError = z.infer<typeof JobError>;

/** A tensor of a result: flat row-major data (FlatTensor's shape). */
export const OutputTensor = z.object({
  name: z.string(),
  shape: z.array(z.number().int()),
  datatype: Datatype,
  data: z.array(z.union([z.number(), z.boolean(), z.string()])).meta({
    description:
      "Elements, flat row-major. BOOL: true/false; integers: numbers, but INT64 values past ±9007199254740991 as " +
      "decimal strings; FP16/FP32: the exact value of the model's output as a number; BYTES: base64 strings",
  }),
});
export type OutputTensor = z.infer<typeof OutputTensor>;

/** One row of a classifier output with labels: the top label and every class's probability. */
export const Classification = z.object({
  output: z.string(),
  label: z.string(),
  score: z.number(),
  probabilities: z.record(z.string(), z.number()),
});
export type Classification = z.infer<typeof Classification>;

/** A v2 inference response, plus decoded classes where the model has labels. */
export const InferenceResult = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    outputs: z.array(OutputTensor),
    classifications: z
      .array(Classification)
      .optional()
      .meta({ description: "One entry per row of a classifier output with labels" }),
    decoded: z
      .unknown()
      .optional()
      .meta({ description: "Free-form decoded output from a post-processor (e.g. recognised text)" }),
  })
  .meta({
    description: "An Open Inference Protocol v2 inference response, plus `classifications` where the model has labels",
  });
export type InferenceResult = z.infer<typeof InferenceResult>;

const EXAMPLE_RESULT: InferenceResult = {
  model_name: "iris",
  model_version: "1",
  outputs: [{ name: "probabilities", datatype: "FP32", shape: [1, 3], data: [0.98, 0.015, 0.005] }],
  classifications: [
    {
      output: "probabilities",
      label: "setosa",
      score: 0.98,
      probabilities: { setosa: 0.98, versicolor: 0.015, virginica: 0.005 },
    },
  ],
};

/** The job as `GET /v1/jobs/:id` returns it (and as webhooks carry it). Responses are built against this type. */
export const JobView = z
  .object({
    id: z.string().meta({ description: "A UUID" }),
    status: JobStatus,
    model: z.string(),
    version: z.string(),
    priority: JobPriority,
    createdAt: Timestamp,
    startedAt: Timestamp.optional(),
    completedAt: Timestamp.optional(),
    attempts: z
      .number()
      .int()
      .min(0)
      .meta({ description: "Runs a worker started (0 for a job the result cache answered)" }),
    metadata: z.record(z.string(), z.string()),
    batchId: z.string().optional().meta({ description: "Set on a batch item" }),
    customId: z.string().optional().meta({ description: "A batch item's customId" }),
    result: InferenceResult.optional(),
    cached: z.literal(true).optional().meta({
      description:
        "Present when the result came from the model's result cache (or from an identical request's run in flight), not from a run of its own",
    }),
    error: JobError.optional(),
  })
  .meta({
    description: "A job as the API shows it",
    examples: [
      {
        id: "7f0c2d1e-5b1a-4c1e-9a43-2f0d5c1b8e01",
        status: "succeeded",
        model: "iris",
        version: "1",
        priority: "normal",
        createdAt: "2026-01-05T10:00:00.000Z",
        startedAt: "2026-01-05T10:00:00.004Z",
        completedAt: "2026-01-05T10:00:00.006Z",
        attempts: 1,
        metadata: { customer: "c-17" },
        result: EXAMPLE_RESULT,
      },
    ],
  });
export type JobView = z.infer<typeof JobView>;

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
