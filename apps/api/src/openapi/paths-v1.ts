import { BatchHeader, BatchListQuery, JobListQuery, WaitQuery } from "@inferline/contracts";
import { ref } from "./components.ts";
import {
  CANCEL_AFTER,
  ID,
  IDEMPOTENCY_KEY,
  json,
  jsonBody,
  MODEL_NAME,
  problem,
  queryParams,
  QUOTA_429,
  SUBMIT_400,
  submit503,
  WAIT_429,
  withCommon,
} from "./responses.ts";

const IRIS_INPUT = { name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] };
const QUEUED_JOB = {
  id: "7f0c2d1e-5b1a-4c1e-9a43-2f0d5c1b8e01",
  status: "queued",
  model: "iris",
  version: "1",
  priority: "normal",
  createdAt: "2026-01-05T10:00:00.000Z",
  attempts: 0,
  metadata: { customer: "c-17" },
};
const QUERY_422 = problem("Invalid or unknown query parameters (validation_failed, naming /query/…)");
const LIST_429 = problem(
  "The tenant has MAX_LISTS_PER_TENANT lists (of jobs and batches) running and 32 waiting in this API process, or one waited 10 s (too_many_lists), or over the key's rate; see Retry-After",
);

const JOB_SUBMIT_DESCRIPTION =
  "`maxQueueSeconds` (1 to 259200) bounds how long the job may wait for a worker; unset, the model's manifest default applies, else the operator's DEFAULT_MAX_QUEUE_SECONDS, else none. A job not started by then ends `expired`. For a model whose manifest sets `cache`, a request identical to an earlier one of the same tenant (same model version, inputs and requested outputs; key order and number spelling do not matter) is answered from the result cache: the 202 shows the job already `succeeded` with the result and `cached: true`, and it never runs. Identical requests in flight at once run the model once. `cache: \"bypass\"` runs the model anyway (its result refreshes the cache).";

const BATCH_SUBMIT_DESCRIPTION =
  "`maxQueueSeconds` (in the body, or as a query parameter with NDJSON) bounds every item's wait for a worker, from the batch's creation, with the same defaults as a job's; items not started by then end `expired` and the batch's `counts.expired` counts them. For a model whose manifest sets `cache`, each item is looked up in the tenant's result cache: a hit is stored `succeeded` at once with the cached result (`cached: true` on its results line and job view) and never runs; a batch whose items are all hits is `completed` when this answers. `cache: \"bypass\"` (in the body, or as a query parameter with NDJSON) runs every item (their results still refresh the cache). With an NDJSON body (`application/x-ndjson`), the settings are query parameters and each line is an item `{customId?, inputs}`.";

/** The NDJSON form of a batch create takes its settings from the query string. */
const NDJSON_SETTINGS = [
  ...queryParams(BatchHeader, ["model", "version", "priority", "maxQueueSeconds", "cache"]).map((p) => ({
    ...p,
    required: false,
    description: "NDJSON bodies only (a JSON body carries it)",
  })),
  {
    name: "webhookUrl",
    in: "query",
    description: "NDJSON bodies only: the batch's webhook URL (a JSON body carries `webhook`)",
    schema: { type: "string", format: "uri" },
  },
];

const jobs = {
  "/v1/jobs": {
    post: {
      operationId: "submitJob",
      summary: "Submit a job",
      description: JOB_SUBMIT_DESCRIPTION,
      parameters: [IDEMPOTENCY_KEY, CANCEL_AFTER],
      requestBody: jsonBody("JobSubmission", {
        iris: { model: "iris", inputs: [IRIS_INPUT], metadata: { customer: "c-17" } },
      }),
      responses: withCommon({
        202: {
          ...json(
            "Accepted; Location names the job (already `succeeded`, `cached: true`, when the result cache answered)",
            "JobView",
            QUEUED_JOB,
          ),
          headers: { Location: { description: "/v1/jobs/{id}", schema: { type: "string" } } },
        },
        200: json("Replay of an idempotent request: the first job", "JobView"),
        400: SUBMIT_400,
        404: problem("Unknown model or version (not_found, naming /model or /version)"),
        409: problem("Idempotency-Key reused with another body"),
        413: problem("Body over BODY_LIMIT (body_too_large)"),
        415: problem("Unsupported content encoding or charset"),
        422: problem(
          "Invalid fields (validation_failed), each named by a JSON Pointer in `errors`: an unknown field, a string holding NUL or an unpaired surrogate, tensors that do not match the model, more rows than the model's maxRowsPerJob, a refused webhook target; unstorable_value if a value reached the database and was refused",
        ),
        429: QUOTA_429,
        503: submit503("The model's queue is over MAX_QUEUE_DEPTH (queue_full)"),
      }),
    },
    get: {
      operationId: "listJobs",
      summary: "List jobs, newest first (with batchId: that batch's items, in submission order from the last)",
      description:
        "A page reads a bounded part of the tenant's jobs (or of the batch's items), so with a status filter it may hold fewer than `limit` jobs, even none, while `nextCursor` is not null: follow `nextCursor` until it is null.",
      parameters: queryParams(JobListQuery),
      responses: withCommon({
        200: json("A page of jobs", "JobListPage"),
        400: problem("A cursor this API did not return (invalid_cursor, naming /query/cursor)"),
        422: QUERY_422,
        429: LIST_429,
      }),
    },
  },
  "/v1/jobs/{id}": {
    get: {
      operationId: "getJob",
      summary: "Read a job; ?wait=N long-polls up to 60 s for it to be terminal",
      parameters: [ID, ...queryParams(WaitQuery)],
      responses: withCommon({
        200: json("The job", "JobView"),
        404: problem("Not found (or another tenant's)"),
        422: QUERY_422,
        429: WAIT_429,
      }),
    },
  },
  "/v1/jobs/{id}/cancel": {
    post: {
      operationId: "cancelJob",
      summary: "Cancel a queued or running job",
      parameters: [ID],
      responses: withCommon({
        200: json("The canceled job", "JobView"),
        404: problem("Not found"),
        409: problem("Already terminal"),
      }),
    },
  },
};

const batches = {
  "/v1/batches": {
    post: {
      operationId: "createBatch",
      summary: "Submit up to 100,000 items (JSON, or NDJSON with ?model=)",
      description: BATCH_SUBMIT_DESCRIPTION,
      parameters: [IDEMPOTENCY_KEY, CANCEL_AFTER, ...NDJSON_SETTINGS],
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: ref("BatchSubmission"),
            examples: { iris: { value: { model: "iris", items: [{ customId: "row-1", inputs: [IRIS_INPUT] }] } } },
          },
          "application/x-ndjson": {
            schema: { type: "string", description: "One item `{customId?, inputs}` per line" },
          },
        },
      },
      responses: withCommon({
        202: {
          ...json("The batch", "BatchView"),
          headers: { Location: { description: "/v1/batches/{id}", schema: { type: "string" } } },
        },
        200: json("Replay of an idempotent request: the first batch", "BatchView"),
        400: SUBMIT_400,
        404: problem(
          "Unknown model or version (not_found, naming /model or /version; /query/model or /query/version for NDJSON)",
        ),
        409: problem("Idempotency-Key reused with another body"),
        413: problem(
          "Body over BATCH_BODY_LIMIT, more than 100,000 items, or one NDJSON line over BATCH_MAX_LINE_BYTES (line_too_large)",
        ),
        422: problem("Invalid items, each named by item and field (up to 100); nothing was created"),
        429: problem(
          "The tenant has MAX_BATCH_UPLOADS_PER_TENANT uploads in progress in this API process (too_many_batch_uploads), its items would pass the tenant's quota of queued work (quota_exceeded), or over the key's rate; see Retry-After",
        ),
        503: submit503(
          "This API process has MAX_BATCH_UPLOADS uploads in progress (batch_uploads_busy), or the model's queue would pass MAX_QUEUE_DEPTH (queue_full)",
        ),
      }),
    },
    get: {
      operationId: "listBatches",
      summary: "List batches, newest first",
      description:
        "A page reads a bounded part of the tenant's batches, so with a status or model filter it may hold fewer than `limit` batches, even none, while `nextCursor` is not null: follow `nextCursor` until it is null.",
      parameters: queryParams(BatchListQuery),
      responses: withCommon({
        200: json("A page of batches", "BatchListPage"),
        400: problem("A cursor this API did not return (invalid_cursor, naming /query/cursor)"),
        422: QUERY_422,
        429: LIST_429,
      }),
    },
  },
  "/v1/batches/{id}": {
    get: {
      operationId: "getBatch",
      summary: "Batch status and counts; ?wait=N long-polls up to 60 s for it to finish",
      parameters: [ID, ...queryParams(WaitQuery)],
      responses: withCommon({
        200: json("The batch: `counts` by item status", "BatchView"),
        404: problem("Not found"),
        422: QUERY_422,
        429: WAIT_429,
      }),
    },
  },
  "/v1/batches/{id}/results": {
    get: {
      operationId: "getBatchResults",
      summary: "Results as NDJSON, in submission order",
      parameters: [ID],
      responses: withCommon({
        200: {
          description:
            "NDJSON: one BatchResultLine per item; an expired item carries error deadline_exceeded; `cached: true` marks an item answered from the result cache (the line is otherwise what a run writes). A client that takes no bytes for RESULT_STREAM_IDLE_MS has its stream closed, cut short",
          content: { "application/x-ndjson": { schema: ref("BatchResultLine") } },
        },
        404: problem("Not found"),
        429: problem(
          "The tenant reads MAX_RESULT_STREAMS_PER_TENANT results streams in this API process (too_many_result_streams), or over the key's rate; see Retry-After",
        ),
        503: problem(
          "This API process writes MAX_RESULT_STREAMS results streams (result_streams_busy), or a dependency is unavailable (dependency_unavailable); see Retry-After",
        ),
      }),
    },
  },
  "/v1/batches/{id}/cancel": {
    post: {
      operationId: "cancelBatch",
      summary: "Cancel every item not yet terminal",
      parameters: [ID],
      responses: withCommon({
        200: json("The batch", "BatchView"),
        404: problem("Not found"),
        409: problem("Already completed or canceled"),
      }),
    },
  },
};

const models = {
  "/v1/models": {
    get: {
      operationId: "listModels",
      summary: "The model repository",
      responses: withCommon({ 200: json("Models", "ModelList") }),
    },
  },
  "/v1/models/{name}": {
    get: {
      operationId: "getModel",
      summary: "One model's contract (inputs, outputs, batching, maxRowsPerJob)",
      parameters: [MODEL_NAME],
      responses: withCommon({ 200: json("The model", "ModelView"), 404: problem("Unknown model") }),
    },
  },
  "/v1/models/{name}/queue": {
    get: {
      operationId: "getModelQueue",
      summary:
        "The caller's queued and running jobs and batch items on the model, the model's depth and its oldest wait (the model-wide part is up to about a second old): enough to decide to back off",
      parameters: [MODEL_NAME],
      responses: withCommon({ 200: json("Queue status", "QueueStatus"), 404: problem("Unknown model") }),
    },
  },
};

const webhooks = {
  "/v1/jobs/{id}/webhooks": {
    get: {
      operationId: "listJobWebhooks",
      summary: "Webhook events of a job, with every delivery attempt",
      parameters: [ID],
      responses: withCommon({ 200: json("Events and attempts", "JobWebhooks"), 404: problem("Not found") }),
    },
  },
  "/v1/jobs/{id}/webhooks/redeliver": {
    post: {
      operationId: "redeliverJobWebhook",
      summary: "Send the job's last webhook event again (at most WEBHOOK_MAX_REDELIVERIES times per event)",
      parameters: [ID],
      responses: withCommon({
        202: json("Enqueued; read its outcome from GET /v1/jobs/{id}/webhooks", "WebhookRedelivery"),
        404: problem("Not found, or no event yet"),
        429: problem(
          "The event was redelivered WEBHOOK_MAX_REDELIVERIES times already (redelivery_limit), or over the key's rate",
        ),
      }),
    },
  },
  "/v1/webhooks/secret": {
    get: {
      operationId: "getWebhookSecret",
      summary: "The tenant's webhook signing secret",
      responses: withCommon({ 200: json("The secret", "WebhookSecret"), 404: problem("Unknown tenant") }),
    },
  },
  "/v1/webhooks/secret/rotate": {
    post: {
      operationId: "rotateWebhookSecret",
      summary:
        "Rotate the signing secret; the one it replaces keeps signing for WEBHOOK_ROTATION_WINDOW_S, as each earlier one does for its own",
      responses: withCommon({ 200: json("The new secret", "WebhookSecret"), 404: problem("Unknown tenant") }),
    },
  },
};

/** Every /v1 route (authenticated with an API key). */
export const v1Paths = { ...jobs, ...batches, ...models, ...webhooks };
