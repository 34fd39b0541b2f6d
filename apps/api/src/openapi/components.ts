import { z } from "zod";
import {
  BatchItem,
  BatchListPage,
  BatchResultLine,
  BatchStatus,
  BatchSubmission,
  BatchView,
  Healthz,
  InferenceResult,
  JobError,
  JobListPage,
  JobPriority,
  JobStatus,
  JobSubmission,
  JobView,
  JobWebhooks,
  ModelList,
  ModelReadiness,
  ModelView,
  NotReady,
  Problem,
  Readyz,
  Tensor,
  TensorSpec,
  Timestamp,
  V2Error,
  V2InferResponse,
  V2Live,
  V2ModelMetadata,
  V2ModelReady,
  V2Ready,
  VersionReadiness,
  WebhookRedelivery,
  WebhookSecret,
  JobWebhookPayload,
  BatchWebhookPayload,
  WebhookPayload,
} from "@inferline/contracts";
import { QueueStatus } from "../services/queue-status.ts";
import { InferRequest } from "../routes/v2.ts";

type Schemas = Record<string, Record<string, unknown>>;

const STATUS_DESCRIPTION =
  "`queued`, `running`, or terminal: `succeeded`, `failed`, `canceled` (by the client, or at its Cancel-After time), `expired` (not started within its queue deadline, maxQueueSeconds; error `deadline_exceeded`; it never ran)";

/** What clients send: read as zod reads it (fields with defaults are optional). */
const REQUESTS: Record<string, z.ZodType> = { Tensor, JobSubmission, BatchItem, BatchSubmission, InferRequest };

/** What the API answers: the schemas its routes build their answers against. */
const RESPONSES: Record<string, z.ZodType> = {
  Timestamp,
  JobStatus,
  JobPriority,
  JobError,
  InferenceResult,
  JobView,
  JobListPage,
  BatchStatus,
  BatchView,
  BatchListPage,
  BatchResultLine,
  TensorSpec,
  ModelView,
  ModelList,
  QueueStatus: QueueStatus.meta({
    description:
      "The caller's queued and running work on the model and its concurrency caps there, the model's depth and the wait of its oldest queue entry not started",
    examples: [
      {
        model: "iris",
        tenant: { queued: 3, running: 1, caps: [{ model: "iris", maxRunning: 2, running: 1 }] },
        depth: 12,
        oldestQueuedAgeSeconds: 0.4,
      },
    ],
  }),
  WebhookSecret,
  JobWebhooks,
  WebhookRedelivery,
  JobWebhookPayload,
  BatchWebhookPayload,
  WebhookPayload,
  VersionReadiness,
  ModelReadiness,
  Healthz,
  Readyz,
  NotReady,
  Problem,
  V2Live,
  V2Ready,
  V2ModelMetadata,
  V2ModelReady,
  V2InferResponse,
  V2Error,
};

/**
 * One registry per direction, so that each schema is one component and schemas that use it refer
 * to it. `$schema` and `$id` are dropped: OpenAPI 3.1's dialect is the document's own.
 */
function componentsOf(schemas: Record<string, z.ZodType>, io: "input" | "output"): Schemas {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: out } = z.toJSONSchema(registry, {
    io,
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(out).map(([id, { $schema: _s, $id: _i, ...rest }]) => [id, rest as Record<string, unknown>]),
  );
}

/** Every component schema of the document, generated from zod. */
export function componentSchemas(): Schemas {
  const requests = componentsOf(REQUESTS, "input");
  const responses = componentsOf(RESPONSES, "output");
  // Set here rather than with .meta(), whose copy of the enum the job and batch views would not refer to.
  responses.JobStatus!.description = STATUS_DESCRIPTION;
  const clash = Object.keys(requests).filter((id) => id in responses);
  if (clash.length > 0) throw new Error(`OpenAPI component names used both ways: ${clash.join(", ")}`);
  return { ...requests, ...responses };
}

/** A `$ref` to a component schema (the test resolves every one). */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
