import { ADMIN_BASE_PATH } from "../routes/admin.ts";
import { json, problem } from "./responses.ts";

const noAuth = { security: [] };
const text = (description: string, type: string) => ({
  description,
  content: { [type]: { schema: { type: "string" } } },
});

/** Probes, metrics, this description, and the operators' dashboard. */
export const opsPaths = {
  "/healthz": {
    get: { ...noAuth, operationId: "healthz", summary: "Process alive", responses: { 200: json("Alive", "Healthz") } },
  },
  "/readyz": {
    get: {
      ...noAuth,
      operationId: "readyz",
      summary:
        "PostgreSQL, Redis and models reachable; `checks` gives each dependency's state as a word, `models` each model's readiness as live workers report it (informational: a model no worker can serve does not make the API unready, it answers 503 model_unavailable for that model)",
      responses: {
        200: json("Ready", "Readyz"),
        503: {
          description: "Not ready (not_ready; Retry-After)",
          content: { "application/problem+json": { schema: { $ref: "#/components/schemas/NotReady" } } },
          headers: { "Retry-After": { schema: { type: "integer" } } },
        },
      },
    },
  },
  "/metrics": {
    get: {
      ...noAuth,
      operationId: "metrics",
      summary: "Prometheus metrics (text exposition format)",
      responses: { 200: text("Metrics", "text/plain") },
    },
  },
  "/openapi.json": {
    get: {
      ...noAuth,
      operationId: "openapi",
      summary: "This document",
      responses: {
        200: { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } },
      },
    },
  },
  "/docs": {
    get: {
      ...noAuth,
      operationId: "docs",
      summary: "An interactive page for this document (Swagger UI; its assets are below /docs/)",
      responses: { 200: text("HTML", "text/html") },
    },
  },
  [ADMIN_BASE_PATH]: {
    get: {
      security: [{ adminBasic: [] }, { adminBearer: [] }],
      operationId: "adminQueues",
      summary:
        "The operators' queue dashboard (bull-board; its pages and API are below this path). Only served when ADMIN_API_KEY is set",
      responses: { 200: text("HTML", "text/html"), 401: problem("Without the admin key (admin_key_required)") },
    },
  },
};
