import { CANCEL_AFTER, COMMON, json, jsonBody, MODEL_NAME, problem, submit503, VERSION } from "./responses.ts";

const noAuth = { security: [] };
const AUTH = { 401: COMMON[401], 503: COMMON[503] };
const UNKNOWN_MODEL = problem("Unknown model or version (not_found)");

const INFER_REQUEST = {
  id: "req-1",
  inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
};

const v2Error = (description: string) => json(description, "V2Error");

const infer = (operationId: string, versioned: boolean) => ({
  post: {
    operationId,
    summary: `Open Inference Protocol v2 inference, synchronous${versioned ? ", on one version" : ""} (a job at high priority)`,
    parameters: [MODEL_NAME, ...(versioned ? [VERSION] : []), CANCEL_AFTER],
    requestBody: jsonBody("InferRequest", { iris: INFER_REQUEST }),
    responses: {
      200: json("The inference response", "V2InferResponse"),
      400: v2Error("Invalid request or Cancel-After"),
      ...AUTH,
      404: UNKNOWN_MODEL,
      409: v2Error("The job was canceled or expired: `error` gives its code"),
      413: problem("Body over BODY_LIMIT (body_too_large)"),
      422: {
        description:
          "The inference failed (`{error}` gives its code), or the inputs do not match the model (a problem, validation_failed, naming each field)",
        content: { ...v2Error("").content, ...problem("").content },
      },
      429: problem(
        "Over the key's rate, too many requests without a known key from one address, the tenant's quota, or the tenant holds too many long-polls (too_many_waiters: no job was created); see Retry-After",
      ),
      503: submit503("The model's queue is over MAX_QUEUE_DEPTH (queue_full)"),
      504: v2Error("Not finished within V2_INFER_TIMEOUT_S: `error` names the job, still readable through /v1/jobs"),
    },
  },
});

const metadata = (operationId: string, versioned: boolean) => ({
  get: {
    operationId,
    summary: `OIP v2 model metadata${versioned ? " of one version" : ""}`,
    parameters: [MODEL_NAME, ...(versioned ? [VERSION] : [])],
    responses: { 200: json("Model metadata", "V2ModelMetadata"), ...AUTH, 404: UNKNOWN_MODEL },
  },
});

const ready = (operationId: string, versioned: boolean) => ({
  get: {
    operationId,
    summary: `OIP v2 ${versioned ? "model version" : "model"} readiness: 200 when at least one live worker serves ${versioned ? "the version" : "a version of it"}`,
    parameters: [MODEL_NAME, ...(versioned ? [VERSION] : [])],
    responses: {
      200: json("Ready", "V2ModelReady"),
      ...AUTH,
      404: UNKNOWN_MODEL,
      503: {
        ...json(
          "Not ready (Retry-After): `state` is `failed` (workers tried and could not load it) or `unknown` (no live worker reported it)",
          "V2ModelReady",
          {
            name: "ocr",
            ready: false,
            state: "failed",
            versions: { "1": { state: "failed", readyWorkers: 0, failedWorkers: 1, codes: ["warmup_failed"] } },
          },
        ),
        headers: { "Retry-After": { schema: { type: "integer" } } },
      },
    },
  },
});

/** The Open Inference Protocol v2 routes (KServe/Triton) on the same pipeline. */
export const v2Paths = {
  "/v2/health/live": {
    get: { ...noAuth, operationId: "v2Live", summary: "OIP v2 liveness", responses: { 200: json("Live", "V2Live") } },
  },
  "/v2/health/ready": {
    get: {
      ...noAuth,
      operationId: "v2Ready",
      summary: "OIP v2 readiness: PostgreSQL, Redis and a model repository (as /readyz)",
      responses: { 200: json("Ready", "V2Ready"), 503: json("Not ready", "V2Ready", { ready: false }) },
    },
  },
  "/v2/models/{name}": metadata("v2ModelMetadata", false),
  "/v2/models/{name}/versions/{version}": metadata("v2ModelVersionMetadata", true),
  "/v2/models/{name}/ready": ready("v2ModelReady", false),
  "/v2/models/{name}/versions/{version}/ready": ready("v2ModelVersionReady", true),
  "/v2/models/{name}/infer": infer("v2Infer", false),
  "/v2/models/{name}/versions/{version}/infer": infer("v2InferVersion", true),
};
