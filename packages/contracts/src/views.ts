import { z } from "zod";
import { Datatype } from "./datatypes.ts";
import { TensorSpec, type ModelManifest } from "./manifest.ts";
import { BatchView } from "./batch.ts";
import { InferenceResult, JobError, JobStatus, JobView, Timestamp, WebhookEventType } from "./job.ts";
import { ModelReadiness, VersionReadiness } from "./model-readiness.ts";

/*
 * The response bodies of the HTTP API as zod schemas: the routes build their answers against the
 * inferred types (so a field added to one and not the other breaks the typecheck), and the
 * OpenAPI document is generated from them. Nothing parses responses with them at run time.
 */

const count = z.number().int().min(0);

/** GET /v1/jobs: a page of jobs, newest first. */
export const JobListPage = z
  .object({
    jobs: z.array(JobView),
    nextCursor: z.string().nullable().meta({
      description:
        "Pass as `cursor` for the next page; null on the last page. A page with a status filter may hold fewer than `limit` jobs, even none, before the last",
    }),
  })
  .meta({ description: "A page of jobs, newest first" });
export type JobListPage = z.infer<typeof JobListPage>;

/** GET /v1/batches: a page of batches, newest first. */
export const BatchListPage = z
  .object({
    batches: z.array(BatchView),
    nextCursor: z.string().nullable().meta({
      description:
        "Pass as `cursor` for the next page; null on the last page. A filtered page may hold fewer than `limit`, even none, before the last",
    }),
  })
  .meta({ description: "A page of batches, newest first" });
export type BatchListPage = z.infer<typeof BatchListPage>;

/** One NDJSON line of GET /v1/batches/:id/results, in submission order. */
export const BatchResultLine = z
  .object({
    index: count.meta({ description: "The item's position in the submission, from 0" }),
    customId: z.string().nullable(),
    jobId: z.string().meta({ description: "The item's job id (readable through /v1/jobs/{id})" }),
    status: JobStatus,
    result: InferenceResult.optional(),
    cached: z.literal(true).optional().meta({ description: "The item was answered from the result cache" }),
    error: JobError.optional().meta({ description: "An expired item carries `deadline_exceeded`" }),
  })
  .meta({
    description: "One line of a batch's results (NDJSON, one object per line)",
    examples: [
      {
        index: 0,
        customId: "row-1",
        jobId: "3c9d6a52-0f1b-4a7e-8d2c-6b1e4f900001",
        status: "failed",
        error: { code: "deadline_exceeded", message: "not started within 60 s" },
      },
    ],
  });
export type BatchResultLine = z.infer<typeof BatchResultLine>;

/** A model as clients see it: its contract, not where its file lives. */
export const ModelView = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    versions: z.array(z.string()),
    defaultVersion: z.string(),
    inputs: z.array(TensorSpec),
    outputs: z.array(TensorSpec),
    batching: z.object({ maxBatchSize: z.number().int().min(1), maxQueueDelayMs: z.number().min(0) }),
    maxRowsPerJob: z.number().int().min(1).meta({ description: "Most rows one job or batch item may carry" }),
  })
  .meta({
    description: "A model's contract: inputs, outputs, batching, maxRowsPerJob",
    examples: [
      {
        name: "iris",
        description: "Iris species classifier",
        versions: ["1"],
        defaultVersion: "1",
        inputs: [
          {
            name: "features",
            datatype: "FP32",
            shape: [-1, 4],
            features: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
          },
        ],
        outputs: [
          { name: "probabilities", datatype: "FP32", shape: [-1, 3], labels: ["setosa", "versicolor", "virginica"] },
        ],
        batching: { maxBatchSize: 64, maxQueueDelayMs: 2 },
        maxRowsPerJob: 1024,
      },
    ],
  });
export type ModelView = z.infer<typeof ModelView>;

/** The model as clients see it (GET /v1/models, `inferline models`): its contract, not where its file lives. */
export function modelView(m: ModelManifest): ModelView {
  return {
    name: m.name,
    description: m.description,
    versions: m.versions.map((v) => v.version),
    defaultVersion: m.defaultVersion ?? m.versions[m.versions.length - 1]!.version,
    inputs: m.inputs,
    outputs: m.outputs,
    batching: m.batching,
    maxRowsPerJob: m.maxRowsPerJob,
  };
}

export const ModelList = z.object({ models: z.array(ModelView) }).meta({ description: "The model repository" });
export type ModelList = z.infer<typeof ModelList>;

/** The tenant's webhook signing secret (GET /v1/webhooks/secret and its rotation). */
export const WebhookSecret = z
  .object({
    secret: z.string().meta({ description: "A Standard Webhooks secret (`whsec_…`)" }),
    previousSecretExpiresAt: Timestamp.optional().meta({
      description:
        "During a rotation window: until when a previous secret still signs, alongside this one (each previous secret signs for its own full window; this is the latest)",
    }),
  })
  .meta({ examples: [{ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }] });
export type WebhookSecret = z.infer<typeof WebhookSecret>;

export const WebhookEventView = z.object({
  id: z.string().meta({ description: "The event's webhook-id (the same on every attempt and redelivery)" }),
  type: z.string().meta({
    description:
      "A webhook event type: `job.succeeded`, `job.failed`, `job.canceled`, `job.expired`, `batch.completed`",
  }),
  url: z.string(),
  status: z.string().meta({
    description:
      "`pending` (an attempt is due or scheduled), `delivered`, `gone` (the receiver answered 410) or `failed` (retries exhausted)",
  }),
  attempts: count,
  redeliveries: count.meta({ description: "Manual redeliveries asked for so far (at most WEBHOOK_MAX_REDELIVERIES)" }),
  createdAt: Timestamp,
  deliveredAt: Timestamp.optional(),
  nextAttemptAt: Timestamp.optional(),
});
export type WebhookEventView = z.infer<typeof WebhookEventView>;

/** The body of every attempt of a job's event: the job as `GET /v1/jobs/:id` shows it. */
export const JobWebhookPayload = z
  .object({
    type: WebhookEventType.extract(["job.succeeded", "job.failed", "job.canceled", "job.expired"]),
    timestamp: Timestamp,
    data: JobView,
  })
  .meta({ description: "A job's webhook event, sent when the job reaches a terminal state" });
export type JobWebhookPayload = z.infer<typeof JobWebhookPayload>;

/** The body of every attempt of `batch.completed`: the batch as `GET /v1/batches/:id` shows it. */
export const BatchWebhookPayload = z
  .object({ type: z.literal("batch.completed"), timestamp: Timestamp, data: BatchView })
  .meta({ description: "A batch's webhook event, sent when every item is terminal" });
export type BatchWebhookPayload = z.infer<typeof BatchWebhookPayload>;

/** What a webhook receiver is POSTed (signed per Standard Webhooks), one shape per event type. */
export const WebhookPayload = z.discriminatedUnion("type", [JobWebhookPayload, BatchWebhookPayload]);
export type WebhookPayload = z.infer<typeof WebhookPayload>;

export const WebhookAttempt = z.object({
  eventId: z.string(),
  attempt: z.number().int().min(1),
  attemptedAt: Timestamp,
  url: z.string(),
  statusCode: z.number().int().nullable(),
  latencyMs: z.number().nullable(),
  error: z.string().nullable(),
  responseBody: z.string().nullable().meta({ description: "The start of the receiver's answer" }),
  nextRetryAt: Timestamp.nullable(),
});
export type WebhookAttempt = z.infer<typeof WebhookAttempt>;

/** GET /v1/jobs/:id/webhooks: the job's events and every delivery attempt, oldest first. */
export const JobWebhooks = z.object({ events: z.array(WebhookEventView), attempts: z.array(WebhookAttempt) }).meta({
  description: "A job's webhook events and every delivery attempt, oldest first",
  examples: [{ events: [], attempts: [] }],
});
export type JobWebhooks = z.infer<typeof JobWebhooks>;

/** POST /v1/jobs/:id/webhooks/redeliver. */
export const WebhookRedelivery = z
  .object({ eventId: z.string(), status: z.literal("queued"), redeliveries: count, maxRedeliveries: count })
  .meta({ examples: [{ eventId: "msg_2Yh3", status: "queued", redeliveries: 1, maxRedeliveries: 5 }] });
export type WebhookRedelivery = z.infer<typeof WebhookRedelivery>;

/** A field at fault, as a JSON Pointer into the request. */
export const ProblemField = z.object({
  path: z.string().meta({ description: "JSON Pointer (RFC 6901) into the request" }),
  message: z.string(),
});

/** An RFC 9457 problem details body; `code` is the stable machine-readable name. Extension members may follow. */
export const Problem = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(ProblemField).optional(),
  })
  .meta({
    description:
      "RFC 9457 problem details; `code` is stable, `detail` is for people. A dependency outage adds `dependency` (`postgres`, `redis`)",
    examples: [
      {
        type: "https://inferline.dev/problems/validation-failed",
        title: "Unprocessable Content",
        status: 422,
        detail: "the request has invalid fields",
        code: "validation_failed",
        errors: [{ path: "/inputs/0/shape", message: "expected [n, 4]" }],
      },
    ],
  });
export type Problem = z.infer<typeof Problem>;

/** A dependency's state as one word. */
export const DependencyState = z.enum([
  "ok",
  "unreachable",
  "timeout",
  "terminated",
  "starting",
  "overloaded",
  "busy",
  "error",
]);
export type DependencyState = z.infer<typeof DependencyState>;

export const ReadinessChecks = z.object({
  postgres: DependencyState,
  redis: DependencyState,
  models: z.enum(["ok", "empty"]),
});
export type ReadinessChecks = z.infer<typeof ReadinessChecks>;

const readinessModels = z.record(z.string(), ModelReadiness).optional().meta({
  description:
    "Each model's readiness as live workers report it (when Redis answered). Informational: a model no worker can serve answers 503 model_unavailable, the API stays ready",
});

export const Healthz = z.object({ status: z.literal("ok") }).meta({ examples: [{ status: "ok" }] });
export type Healthz = z.infer<typeof Healthz>;

/** GET /readyz when ready. */
export const Readyz = z.object({ status: z.literal("ready"), checks: ReadinessChecks, models: readinessModels }).meta({
  examples: [
    {
      status: "ready",
      checks: { postgres: "ok", redis: "ok", models: "ok" },
      models: { iris: { state: "ready", versions: { "1": { state: "ready", readyWorkers: 1, failedWorkers: 0 } } } },
    },
  ],
});
export type Readyz = z.infer<typeof Readyz>;

/** GET /readyz when not ready: a problem (`not_ready`) with the states. */
export const NotReady = Problem.extend({
  code: z.literal("not_ready"),
  checks: ReadinessChecks,
  models: readinessModels,
}).meta({
  examples: [
    {
      type: "https://inferline.dev/problems/not-ready",
      title: "Service Unavailable",
      status: 503,
      detail: "not ready: redis unreachable",
      code: "not_ready",
      checks: { postgres: "ok", redis: "unreachable", models: "ok" },
    },
  ],
});
export type NotReady = z.infer<typeof NotReady>;

/** Open Inference Protocol v2. */
export const V2Live = z.object({ live: z.boolean() }).meta({ examples: [{ live: true }] });
export type V2Live = z.infer<typeof V2Live>;
export const V2Ready = z.object({ ready: z.boolean() }).meta({ examples: [{ ready: true }] });
export type V2Ready = z.infer<typeof V2Ready>;

const V2TensorMetadata = z.object({ name: z.string(), datatype: Datatype, shape: z.array(z.number().int()) });

export const V2ModelMetadata = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.literal("onnxruntime_onnx"),
    inputs: z.array(V2TensorMetadata),
    outputs: z.array(V2TensorMetadata),
  })
  .meta({
    description: "OIP v2 model metadata",
    examples: [
      {
        name: "iris",
        versions: ["1"],
        platform: "onnxruntime_onnx",
        inputs: [{ name: "features", datatype: "FP32", shape: [-1, 4] }],
        outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
      },
    ],
  });
export type V2ModelMetadata = z.infer<typeof V2ModelMetadata>;

/** OIP v2 model (or version) readiness: 200 with `ready: true`, or 503 with why. */
export const V2ModelReady = z
  .object({
    name: z.string(),
    version: z.string().optional(),
    ready: z.boolean(),
    state: VersionReadiness.shape.state.optional().meta({
      description: "When not ready: `failed` (workers could not load it) or `unknown` (no live worker reported it)",
    }),
    versions: z.record(z.string(), VersionReadiness).optional(),
  })
  .meta({ examples: [{ name: "iris", ready: true }] });
export type V2ModelReady = z.infer<typeof V2ModelReady>;

export const V2InferResponse = InferenceResult.extend({
  id: z.string().meta({ description: "The request's `id`, else the job's" }),
}).meta({
  description: "OIP v2 inference response",
  examples: [
    {
      id: "req-1",
      model_name: "iris",
      model_version: "1",
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [1, 3], data: [0.98, 0.015, 0.005] }],
    },
  ],
});
export type V2InferResponse = z.infer<typeof V2InferResponse>;

export const V2Error = z
  .object({ error: z.string() })
  .meta({ description: "OIP v2 error", examples: [{ error: "inputs: Too small: expected array to have >=1 items" }] });
export type V2Error = z.infer<typeof V2Error>;
