import { componentSchemas } from "./openapi/components.ts";
import { opsPaths } from "./openapi/paths-ops.ts";
import { v1Paths } from "./openapi/paths-v1.ts";
import { v2Paths } from "./openapi/paths-v2.ts";
import { ref } from "./openapi/components.ts";

/** What the API POSTs to a job's or a batch's webhook URL (OpenAPI 3.1 `webhooks`). */
const WEBHOOKS = {
  workEnded: {
    post: {
      summary: "A job or a batch reached a terminal state",
      description:
        "Signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`; verify with `verifyWebhook` of @inferline/client). Retried on a non-2xx answer; a 410 stops the retries.",
      requestBody: { required: true, content: { "application/json": { schema: ref("WebhookPayload") } } },
      responses: { "200": { description: "Any 2xx: received" }, "410": { description: "Gone: no more attempts" } },
    },
  },
};

/**
 * The OpenAPI 3.1 description of the API. Request and response schemas are generated from the
 * zod schemas the routes validate with and build their answers against (see
 * @inferline/contracts' views), so the document cannot drift from the code; the test checks that
 * every route the app registers is here and that live answers match.
 */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: { title: "Inferline", version: "1", description: "Queue-based asynchronous inference for ONNX models." },
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "An API key from `inferline keys create`" },
        adminBasic: { type: "http", scheme: "basic", description: "Any user name, ADMIN_API_KEY as password" },
        adminBearer: { type: "http", scheme: "bearer", description: "ADMIN_API_KEY" },
      },
      schemas: componentSchemas(),
    },
    security: [{ apiKey: [] }],
    paths: { ...v1Paths, ...v2Paths, ...opsPaths },
    webhooks: WEBHOOKS,
  };
}
