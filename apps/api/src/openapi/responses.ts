import { z } from "zod";
import { ref } from "./components.ts";
import { IdempotencyKey } from "../services/idempotency.ts";

type Json = Record<string, unknown>;
/** An OpenAPI response object. */
export type ResponseObject = { description: string; content?: Record<string, Json>; headers?: Json };

/** A JSON answer of a component schema, with an example of its own when the schema's is not the case. */
export const json = (description: string, schema: string, example?: unknown): ResponseObject => ({
  description,
  content: { "application/json": { schema: ref(schema), ...(example === undefined ? {} : { example }) } },
});

/** A JSON request body of a component schema, with named examples. */
export const jsonBody = (schema: string, examples: Record<string, unknown>): Json => ({
  required: true,
  content: {
    "application/json": {
      schema: ref(schema),
      examples: Object.fromEntries(Object.entries(examples).map(([k, value]) => [k, { value }])),
    },
  },
});

/** A problem document answer (RFC 9457); the description names the `code` values it can carry. */
export const problem = (description: string, example?: Json): ResponseObject => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem"), ...(example ? { example } : {}) } },
});

const problemExample = (status: number, title: string, code: string, detail: string) => ({
  type: `https://inferline.dev/problems/${code.replaceAll("_", "-")}`,
  title,
  status,
  detail,
  code,
});

/** Answers any authenticated route may give, whatever it does. */
export const COMMON = {
  400: problem(
    "Malformed JSON (malformed_json), an unreadable body (malformed_body) or a malformed path (malformed_path)",
  ),
  401: problem(
    "Missing, unknown or revoked API key (missing_api_key, invalid_api_key)",
    problemExample(401, "Unauthorized", "missing_api_key", "send Authorization: Bearer <api key>"),
  ),
  429: problem(
    "Over the key's request rate (rate_limited), or too many requests without a known key from one address (auth_rate_limited); Retry-After says when to try again",
  ),
  503: problem(
    "PostgreSQL or Redis is unavailable (dependency_unavailable, naming it in `dependency`); Retry-After says when to try again",
    {
      ...problemExample(
        503,
        "Service Unavailable",
        "dependency_unavailable",
        "Redis is unavailable (unreachable); retry after 5 s",
      ),
      dependency: "redis",
    },
  ),
};

export const withCommon = (extra: Record<number, ResponseObject>): Record<number, ResponseObject> => ({
  ...COMMON,
  ...extra,
});

export const QUOTA_429 = problem(
  "The tenant has as many jobs and batch items queued (not started) as its quota allows (quota_exceeded: the tenant's maxQueued, else DEFAULT_TENANT_MAX_QUEUED; the detail names it), or over the key's rate; see Retry-After",
);
export const WAIT_429 = problem(
  "Over the key's rate, or the tenant holds too many long-polls in this API process (too_many_waiters); see Retry-After",
);
export const SUBMIT_400 = problem(
  `${COMMON[400].description}, a bad Idempotency-Key (invalid_idempotency_key, naming /headers/idempotency-key) or a bad Cancel-After (invalid_cancel_after, naming /headers/cancel-after)`,
);

/** The 503 of a submit: the queue, the model's workers, or a dependency. */
export const submit503 = (queue: string): ResponseObject =>
  problem(
    `${queue}; no live worker can serve the model version: workers told to serve it failed to load it and none serves it (model_unavailable, Retry-After 30; a model no worker reported yet is accepted and waits); or a dependency is unavailable (dependency_unavailable). See Retry-After`,
    problemExample(
      503,
      "Service Unavailable",
      "model_unavailable",
      "model ocr@1 cannot be served: the worker told to serve it failed to load it (warmup_failed) and none serves it; retry after an operator fixed it",
    ),
  );

/** The Cancel-After request header of the submit routes: a total deadline from the request. */
export const CANCEL_AFTER = {
  name: "Cancel-After",
  in: "header",
  description:
    "Cancel the work (status `canceled`, event `job.canceled`) if it is not terminal this long after the request, running or not: `90s`, `5m`, `1h`, `1h30m`, or seconds; 1 s to 3 days. Anything else answers 400 invalid_cancel_after.",
  schema: { type: "string", pattern: "^(\\d+|(\\d+h)?(\\d+m)?(\\d+s)?)$", examples: ["90s", "5m", "1h"] },
};

export const IDEMPOTENCY_KEY = {
  name: "Idempotency-Key",
  in: "header",
  description:
    "Retrying a create with the same key and body within 24 h answers 200 with the first job or batch; another body answers 409",
  schema: z.toJSONSchema(IdempotencyKey),
};

export const pathParam = (name: string, schema: Json = { type: "string" }) => ({
  name,
  in: "path",
  required: true,
  schema,
});
export const ID = pathParam("id", { type: "string", format: "uuid" });
export const MODEL_NAME = pathParam("name");
export const VERSION = pathParam("version");

/** Query parameters from a zod object's fields, read as the route reads them. */
export function queryParams(schema: z.ZodObject, only?: readonly string[]): Json[] {
  const object = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  const required = new Set(object.required ?? []);
  return Object.entries((object.properties ?? {}) as Record<string, Json>)
    .filter(([name]) => !only || only.includes(name))
    .map(([name, schema]) => ({ name, in: "query", ...(required.has(name) ? { required: true } : {}), schema }));
}
