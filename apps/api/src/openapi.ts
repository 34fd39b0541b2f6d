import { z } from "zod";
import { BatchSubmission, JobStatus, JobSubmission, Tensor } from "@inferline/contracts";
import { QueueStatus } from "./services/queue-status.ts";

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (s: unknown) => ({ content: { "application/json": { schema: s } } });
const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: ref("Problem") } } });
const id = { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } };

/** Answers any authenticated route may give, whatever it does. */
const COMMON = {
  400: problem("Malformed JSON (malformed_json), an unreadable body (malformed_body) or a malformed path (malformed_path)"),
  401: problem("Missing, unknown or revoked API key (missing_api_key, invalid_api_key)"),
  429: problem("Over the key's request rate (rate_limited), or too many requests without a known key from one address (auth_rate_limited); Retry-After says when to try again"),
  503: problem("PostgreSQL or Redis is unavailable (dependency_unavailable); Retry-After says when to try again"),
};
const QUOTA_429 = problem(
  "The tenant has as many jobs and batch items queued (not started) as its quota allows (quota_exceeded: the tenant's maxQueued, else DEFAULT_TENANT_MAX_QUEUED; the detail names it), or over the key's rate; see Retry-After",
);
const WAIT_429 = problem("Over the key's rate, or the tenant holds too many long-polls in this API process (too_many_waiters); see Retry-After");
const with_ = (extra: Record<number, unknown>, common: Record<number, unknown> = COMMON) => ({ ...common, ...extra });

/** The Cancel-After request header of the submit routes: a total deadline from the request. */
const CANCEL_AFTER = {
  name: "Cancel-After",
  in: "header",
  description:
    "Cancel the work (status `canceled`, event `job.canceled`) if it is not terminal this long after the request, running or not: `90s`, `5m`, `1h`, `1h30m`, or seconds; 1 s to 3 days. Anything else answers 400 invalid_cancel_after.",
  schema: { type: "string", pattern: "^(\\d+|(\\d+h)?(\\d+m)?(\\d+s)?)$", examples: ["90s", "5m", "1h"] },
};
const SUBMIT_400 = problem(`${COMMON[400].description}, a bad Idempotency-Key (invalid_idempotency_key) or a bad Cancel-After (invalid_cancel_after, naming /headers/cancel-after)`);
const STATUS_DESCRIPTION =
  "`queued`, `running`, or terminal: `succeeded`, `failed`, `canceled` (by the client, or at its Cancel-After time), `expired` (not started within its queue deadline, maxQueueSeconds; error `deadline_exceeded`; it never ran)";

/** A job as the API shows it (JobView in @inferline/contracts). */
const JOB_VIEW = {
  type: "object",
  required: ["id", "status", "model", "version", "priority", "createdAt", "attempts", "metadata"],
  properties: {
    id: { type: "string" },
    status: ref("JobStatus"),
    model: { type: "string" },
    version: { type: "string" },
    priority: { type: "string", enum: ["high", "normal", "low"] },
    createdAt: { type: "string", format: "date-time" },
    startedAt: { type: "string", format: "date-time" },
    completedAt: { type: "string", format: "date-time" },
    attempts: { type: "integer", description: "Runs a worker started (0 for a job the result cache answered)" },
    metadata: { type: "object", additionalProperties: { type: "string" } },
    batchId: { type: "string" },
    customId: { type: "string" },
    result: { type: "object", description: "A v2 inference response: {model_name, model_version, outputs: [tensor]} (plus classifications where the model has labels)" },
    cached: { type: "boolean", const: true, description: "Present when the result came from the model's result cache (or from an identical request's run in flight), not from a run of its own" },
    error: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } },
  },
};

/**
 * The OpenAPI 3.1 description of the API. Request schemas come from the same zod schemas the
 * routes validate with, so the document cannot drift from the validation.
 */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: { title: "Inferline", version: "1", description: "Queue-based asynchronous inference for ONNX models." },
    components: {
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "An API key from `inferline keys create`" } },
      schemas: {
        Tensor: schema(Tensor),
        JobSubmission: schema(JobSubmission),
        JobStatus: { ...schema(JobStatus), description: STATUS_DESCRIPTION },
        Job: JOB_VIEW,
        BatchSubmission: schema(BatchSubmission),
        QueueStatus: {
          ...z.toJSONSchema(QueueStatus, { io: "output" }),
          description: "The caller's queued and running work on the model, the model's depth and the wait of its oldest queue entry not started",
        },
        Problem: {
          type: "object",
          required: ["type", "title", "status", "detail", "code"],
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            code: { type: "string" },
            errors: { type: "array", items: { type: "object", properties: { path: { type: "string", description: "JSON Pointer" }, message: { type: "string" } } } },
          },
        },
      },
    },
    security: [{ apiKey: [] }],
    paths: {
      "/v1/jobs": {
        post: {
          summary: "Submit a job",
          description:
            "`maxQueueSeconds` (1 to 259200) bounds how long the job may wait for a worker; unset, the model's manifest default applies, else the operator's DEFAULT_MAX_QUEUE_SECONDS, else none. A job not started by then ends `expired`. For a model whose manifest sets `cache`, a request identical to an earlier one of the same tenant (same model version, inputs and requested outputs; key order and number spelling do not matter) is answered from the result cache: the 202 shows the job already `succeeded` with the result and `cached: true`, and it never runs. Identical requests in flight at once run the model once. `cache: \"bypass\"` runs the model anyway (its result refreshes the cache).",
          parameters: [{ name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 255 } }, CANCEL_AFTER],
          requestBody: json(ref("JobSubmission")),
          responses: with_({
            202: { description: "Accepted; Location names the job (already `succeeded`, `cached: true`, when the result cache answered)", content: { "application/json": { schema: ref("Job") } } },
            400: SUBMIT_400,
            200: { description: "Replay of an idempotent request", content: { "application/json": { schema: ref("Job") } } },
            404: problem("Unknown model or version"),
            409: problem("Idempotency-Key reused with another body"),
            413: problem("Body over BODY_LIMIT (body_too_large)"),
            415: problem("Unsupported content encoding or charset"),
            422: problem(
              "Invalid fields (validation_failed), each named by a JSON Pointer in `errors`: an unknown field, a string holding NUL or an unpaired surrogate, tensors that do not match the model, more rows than the model's maxRowsPerJob, a refused webhook target; unstorable_value if a value reached the database and was refused",
            ),
            429: QUOTA_429,
            503: problem("The model's queue is over MAX_QUEUE_DEPTH (queue_full), or a dependency is unavailable (dependency_unavailable); see Retry-After"),
          }),
        },
        get: {
          summary: "List jobs, newest first",
          parameters: ["status", "model", "batchId", "cursor"]
            .map((name) => ({ name, in: "query", schema: name === "status" ? ref("JobStatus") : { type: "string" } }))
            .concat([{ name: "limit", in: "query", schema: { type: "integer", maximum: 500 } } as never]),
          responses: with_({ 200: { description: "{jobs, nextCursor}" }, 400: problem("A cursor this API did not return (invalid_cursor)"), 422: problem("Invalid or unknown query parameters") }),
        },
      },
      "/v1/jobs/{id}": {
        get: {
          summary: "Read a job; ?wait=N long-polls up to 60 s",
          parameters: [id, { name: "wait", in: "query", schema: { type: "number", maximum: 60 } }],
          responses: with_({
            200: { description: `The job; its status is ${STATUS_DESCRIPTION}`, content: { "application/json": { schema: ref("Job") } } },
            404: problem("Not found (or another tenant's)"),
            422: problem("Invalid or unknown query parameters"),
            429: WAIT_429,
          }),
        },
      },
      "/v1/jobs/{id}/cancel": {
        post: {
          summary: "Cancel a queued or running job",
          parameters: [id],
          responses: with_({ 200: { description: "The canceled job" }, 404: problem("Not found"), 409: problem("Already terminal") }),
        },
      },
      "/v1/jobs/{id}/webhooks": {
        get: { summary: "Webhook events of a job, with every delivery attempt", parameters: [id], responses: with_({ 200: { description: "{events, attempts}" }, 404: problem("Not found") }) },
      },
      "/v1/jobs/{id}/webhooks/redeliver": {
        post: {
          summary: "Send the job's last webhook event again (at most WEBHOOK_MAX_REDELIVERIES times per event)",
          parameters: [id],
          responses: with_({
            202: { description: "Enqueued: {eventId, status, redeliveries, maxRedeliveries}" },
            404: problem("Not found, or no event yet"),
            429: problem("The event was redelivered WEBHOOK_MAX_REDELIVERIES times already (redelivery_limit), or over the key's rate"),
          }),
        },
      },
      "/v1/batches": {
        post: {
          summary: "Submit up to 100,000 items (JSON, or NDJSON with ?model=)",
          description:
            "`maxQueueSeconds` (in the body, or as a query parameter with NDJSON) bounds every item's wait for a worker, from the batch's creation, with the same defaults as a job's; items not started by then end `expired` and the batch's `counts.expired` counts them. For a model whose manifest sets `cache`, each item is looked up in the tenant's result cache: a hit is stored `succeeded` at once with the cached result (`cached: true` on its results line and job view) and never runs; a batch whose items are all hits is `completed` when this answers. `cache: \"bypass\"` (in the body, or as a query parameter with NDJSON) runs every item (their results still refresh the cache).",
          parameters: [
            { name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 255 } },
            CANCEL_AFTER,
            { name: "maxQueueSeconds", in: "query", description: "NDJSON bodies only (a JSON body carries it)", schema: { type: "integer", minimum: 1, maximum: 259200 } },
            {
              name: "cache",
              in: "query",
              description: "NDJSON bodies only (a JSON body carries it): `bypass` runs every item, even those the result cache could answer",
              schema: { type: "string", enum: ["bypass"] },
            },
          ],
          requestBody: { content: { "application/json": { schema: ref("BatchSubmission") }, "application/x-ndjson": { schema: { type: "string" } } } },
          responses: with_({
            202: { description: "The batch" },
            200: { description: "Replay of an idempotent request: the first batch" },
            400: SUBMIT_400,
            404: problem("Unknown model or version"),
            409: problem("Idempotency-Key reused with another body"),
            413: problem("Body over BATCH_BODY_LIMIT, more than 100,000 items, or one NDJSON line over BATCH_MAX_LINE_BYTES (line_too_large)"),
            422: problem("Invalid items, each named by item and field (up to 100); nothing was created"),
            429: problem(
              "The tenant has MAX_BATCH_UPLOADS_PER_TENANT uploads in progress in this API process (too_many_batch_uploads), its items would pass the tenant's quota of queued work (quota_exceeded), or over the key's rate; see Retry-After",
            ),
            503: problem(
              "This API process has MAX_BATCH_UPLOADS uploads in progress (batch_uploads_busy), the model's queue would pass MAX_QUEUE_DEPTH (queue_full), or a dependency is unavailable; see Retry-After",
            ),
          }),
        },
      },
      "/v1/batches/{id}": {
        get: {
          summary: "Batch status and counts; ?wait=N long-polls up to 60 s",
          parameters: [id, { name: "wait", in: "query", schema: { type: "number", maximum: 60 } }],
          responses: with_({
            200: { description: "The batch: `counts` by item status (queued, running, succeeded, failed, canceled, expired)" },
            404: problem("Not found"),
            422: problem("Invalid or unknown query parameters"),
            429: WAIT_429,
          }),
        },
      },
      "/v1/batches/{id}/results": {
        get: {
          summary: "Results as NDJSON, in submission order",
          parameters: [id],
          responses: with_({
            200: {
              description:
                "NDJSON: `{index, customId, jobId, status, result?, cached?, error?}` per item; an expired item carries error deadline_exceeded; `cached: true` marks an item answered from the result cache (the line is otherwise what a run writes)",
              content: { "application/x-ndjson": {} },
            },
            404: problem("Not found"),
          }),
        },
      },
      "/v1/batches/{id}/cancel": {
        post: {
          summary: "Cancel every item not yet terminal",
          parameters: [id],
          responses: with_({ 200: { description: "The batch" }, 404: problem("Not found"), 409: problem("Already completed or canceled") }),
        },
      },
      "/v1/models": { get: { summary: "The model repository", responses: with_({ 200: { description: "Models" } }) } },
      "/v1/models/{name}": {
        get: {
          summary: "One model's contract (inputs, outputs, batching, maxRowsPerJob)",
          parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
          responses: with_({ 200: { description: "Model" }, 404: problem("Unknown model") }),
        },
      },
      "/v1/models/{name}/queue": {
        get: {
          summary:
            "The caller's queued and running jobs and batch items on the model, the model's depth and its oldest wait (the model-wide part is up to about a second old): enough to decide to back off",
          parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
          responses: with_({ 200: { description: "Queue status", ...json(ref("QueueStatus")) }, 404: problem("Unknown model") }),
        },
      },
      "/v1/webhooks/secret": { get: { summary: "The tenant's webhook signing secret", responses: with_({ 200: { description: "{secret}" } }) } },
      "/v1/webhooks/secret/rotate": { post: { summary: "Rotate the signing secret", responses: with_({ 200: { description: "The new secret" } }) } },
      "/v2/models/{name}/infer": {
        post: {
          summary: "Open Inference Protocol v2, synchronous (its body stays open to the protocol's parameters)",
          parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }, CANCEL_AFTER],
          responses: {
            200: { description: "v2 inference response" },
            400: { description: "Invalid request or Cancel-After: `{error}`" },
            409: { description: "The job was canceled or expired: `{error}` gives its code" },
            401: problem("Missing, unknown or revoked API key"),
            429: problem(
              "Over the key's rate, too many requests without a known key from one address, or the tenant holds too many long-polls (too_many_waiters: no job was created); see Retry-After",
            ),
            503: problem("A dependency is unavailable, or the queue is full; see Retry-After"),
            504: { description: "Not finished within V2_INFER_TIMEOUT_S: `{error}` names the job, still readable through /v1/jobs" },
          },
        },
      },
      "/healthz": { get: { security: [], summary: "Process alive", responses: { 200: { description: "ok" } } } },
      "/readyz": {
        get: {
          security: [],
          summary: "PostgreSQL, Redis and models reachable; `checks` gives each dependency's state as a word",
          responses: { 200: { description: "ready" }, 503: { description: "not ready" } },
        },
      },
      "/metrics": { get: { security: [], summary: "Prometheus metrics", responses: { 200: { description: "text" } } } },
    },
  };
}
