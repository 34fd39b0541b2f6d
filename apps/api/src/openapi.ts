import { z } from "zod";
import { BatchSubmission, JobSubmission, Tensor } from "@inferline/contracts";

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (s: unknown) => ({ content: { "application/json": { schema: s } } });
const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: ref("Problem") } } });
const id = { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } };

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
        BatchSubmission: schema(BatchSubmission),
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
          parameters: [{ name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 255 } }],
          requestBody: json(ref("JobSubmission")),
          responses: { 202: { description: "Accepted; Location names the job" }, 200: { description: "Replay of an idempotent request" }, 400: problem("Malformed JSON"), 401: problem("Missing or invalid key"), 404: problem("Unknown model"), 409: problem("Idempotency-Key reused with another body"), 413: problem("Body too large"), 422: problem("Invalid fields"), 429: problem("Over the key's rate"), 503: problem("Queue full") },
        },
        get: {
          summary: "List jobs, newest first",
          parameters: ["status", "model", "batchId", "cursor"].map((name) => ({ name, in: "query", schema: { type: "string" } })).concat([{ name: "limit", in: "query", schema: { type: "integer", maximum: 500 } } as never]),
          responses: { 200: { description: "{jobs, nextCursor}" } },
        },
      },
      "/v1/jobs/{id}": { get: { summary: "Read a job; ?wait=N long-polls up to 60 s", parameters: [id, { name: "wait", in: "query", schema: { type: "number", maximum: 60 } }], responses: { 200: { description: "The job" }, 404: problem("Not found") } } },
      "/v1/jobs/{id}/cancel": { post: { summary: "Cancel a queued or running job", parameters: [id], responses: { 200: { description: "The canceled job" }, 409: problem("Already terminal") } } },
      "/v1/jobs/{id}/webhooks": { get: { summary: "Webhook delivery attempts of a job", parameters: [id], responses: { 200: { description: "Attempts" } } } },
      "/v1/jobs/{id}/webhooks/redeliver": { post: { summary: "Send the job's last webhook event again", parameters: [id], responses: { 202: { description: "Enqueued" } } } },
      "/v1/batches": {
        post: {
          summary: "Submit up to 100,000 items (JSON, or NDJSON with ?model=)",
          parameters: [{ name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 255 } }],
          requestBody: { content: { "application/json": { schema: ref("BatchSubmission") }, "application/x-ndjson": { schema: { type: "string" } } } },
          responses: { 202: { description: "The batch" }, 200: { description: "Replay of an idempotent request: the first batch" }, 409: problem("Idempotency-Key reused with another body"), 422: problem("Invalid items; nothing was created") },
        },
      },
      "/v1/batches/{id}": { get: { summary: "Batch status and counts", parameters: [id], responses: { 200: { description: "The batch" } } } },
      "/v1/batches/{id}/results": { get: { summary: "Results as NDJSON, in submission order", parameters: [id], responses: { 200: { description: "NDJSON", content: { "application/x-ndjson": {} } } } } },
      "/v1/batches/{id}/cancel": { post: { summary: "Cancel every item not yet terminal", parameters: [id], responses: { 200: { description: "The batch" } } } },
      "/v1/models": { get: { summary: "The model repository", responses: { 200: { description: "Models" } } } },
      "/v1/models/{name}": { get: { summary: "One model's contract", parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }], responses: { 200: { description: "Model" } } } },
      "/v1/webhooks/secret": { get: { summary: "The tenant's webhook signing secret", responses: { 200: { description: "{secret}" } } } },
      "/v1/webhooks/secret/rotate": { post: { summary: "Rotate the signing secret", responses: { 200: { description: "The new secret" } } } },
      "/v2/models/{name}/infer": { post: { summary: "Open Inference Protocol v2, synchronous", parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }], responses: { 200: { description: "v2 inference response" } } } },
      "/healthz": { get: { security: [], summary: "Process alive", responses: { 200: { description: "ok" } } } },
      "/readyz": { get: { security: [], summary: "PostgreSQL, Redis and models reachable", responses: { 200: { description: "ready" }, 503: { description: "not ready" } } } },
      "/metrics": { get: { security: [], summary: "Prometheus metrics", responses: { 200: { description: "text" } } } },
    },
  };
}
