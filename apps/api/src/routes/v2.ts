import express, { Router, type RequestHandler } from "express";
import { z } from "zod";
import {
  CacheMode,
  isTerminal,
  modelView,
  StorableText,
  SUBMISSION_DEFAULTS,
  Tensor,
  type V2Error,
  type V2InferResponse,
  type V2Live,
  type V2ModelMetadata,
  type V2ModelReady,
  type V2Ready,
} from "@inferline/contracts";
import { type ModelRepository } from "@inferline/runtime";
import type { JobService } from "../services/job-service.ts";
import type { WaiterLimit } from "../services/long-poll.ts";
import { holdWaiterSlot } from "./long-poll-handler.ts";
import { serverSpan } from "../middleware/server-span.ts";
import type { ApiMetrics } from "../metrics.ts";
import { CANCEL_AFTER_HINT, cancelAfterHeader } from "../services/deadlines.ts";
import { MODEL_UNAVAILABLE_RETRY_AFTER_S, type ModelAvailability } from "../services/model-availability.ts";

/** The Open Inference Protocol v2 request body. */
export const InferRequest = z.object({
  // Kept as the job's metadata, so it must be storable.
  id: StorableText.max(256).optional(),
  inputs: z.array(Tensor).min(1).max(16),
  outputs: z
    .array(z.object({ name: z.string().min(1) }))
    .max(16)
    .optional(),
  // The protocol's free-form request parameters; `cache` is /v1's (CacheMode: "bypass" runs the model even when the result cache could answer, "off" also stores nothing). Others are ignored.
  parameters: z.looseObject({ cache: CacheMode.optional() }).optional(),
});

/** v2 answers errors as `{error: "..."}`; the v1 problem handler still catches unexpected ones. */
const v2Error = (res: express.Response, status: number, error: string) =>
  void res.status(status).json({ error } satisfies V2Error);

/**
 * Open Inference Protocol v2 (KServe/Triton) on the same pipeline: `infer` is a job at high
 * priority, answered when it finishes or after `timeoutSeconds` (then 504 with the job id, which
 * stays readable through /v1/jobs). A `Cancel-After` header bounds the job as on POST /v1/jobs; a
 * job canceled or expired answers 409 with its error.
 */
export function v2Router(deps: {
  models: ModelRepository;
  jobs: JobService;
  ready: () => Promise<boolean>;
  auth: RequestHandler[];
  bodyLimit: string;
  timeoutSeconds: number;
  waiters: WaiterLimit;
  metrics?: Pick<ApiMetrics, "submitted">;
  /** Model readiness as live workers report it; absent, every known model answers ready. */
  availability?: Pick<ModelAvailability, "of">;
}): Router {
  const router = Router();
  router.get("/health/live", (_req, res) => void res.json({ live: true } satisfies V2Live));
  router.get("/health/ready", async (_req, res) => {
    const ready = await deps.ready();
    res.status(ready ? 200 : 503).json({ ready } satisfies V2Ready);
  });

  router.use(...deps.auth);
  const metadata = (name: string, version?: string): V2ModelMetadata => {
    const m = deps.models.resolve(name, version);
    const view = modelView(m.manifest);
    return {
      name: view.name,
      versions: view.versions,
      platform: "onnxruntime_onnx",
      inputs: view.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      outputs: view.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    };
  };
  router.get("/models/:name", (req, res) => void res.json(metadata(req.params.name)));
  router.get(
    "/models/:name/versions/:version",
    (req, res) => void res.json(metadata(req.params.name, req.params.version)),
  );
  // OIP v2 model readiness: 200 when at least one live worker serves the version (the default's,
  // or any, for the model), else 503 with why: `failed` (workers tried and could not load it) or
  // `unknown` (no live worker reported it). Read fresh, not from the submit path's cache.
  const ready = async (res: express.Response, name: string, version?: string) => {
    const model = deps.models.resolve(name, version);
    if (!deps.availability) return void res.json({ name: model.manifest.name, ready: true } satisfies V2ModelReady);
    const readiness = await deps.availability.of(model.manifest.name, { fresh: true });
    const state = version ? readiness.versions[model.version]! : readiness;
    if (state.state === "ready")
      return void res.json({
        name: model.manifest.name,
        ...(version ? { version: model.version } : {}),
        ready: true,
      } satisfies V2ModelReady);
    res.setHeader("Retry-After", String(MODEL_UNAVAILABLE_RETRY_AFTER_S));
    res.status(503).json({
      name: model.manifest.name,
      ...(version ? { version: model.version } : {}),
      ready: false,
      state: state.state,
      versions: version ? undefined : readiness.versions,
    } satisfies V2ModelReady);
  };
  router.get("/models/:name/ready", (req, res) => ready(res, req.params.name));
  router.get("/models/:name/versions/:version/ready", (req, res) => ready(res, req.params.name, req.params.version));

  const infer: RequestHandler = async (req, res) => {
    const body = InferRequest.safeParse(req.body);
    if (!body.success)
      return v2Error(res, 400, body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const params = req.params as { name: string; version?: string };
    // As on POST /v1/jobs: the job is canceled if it has not finished that long after the request.
    const cancelAfter = cancelAfterHeader(req.header("cancel-after"));
    if (!cancelAfter) return v2Error(res, 400, CANCEL_AFTER_HINT);
    // The slot is taken before the submit: a job the client cannot wait for is one it never
    // sees the result of and would submit again on retry, so a tenant at its cap gets the 429
    // with nothing created.
    if (!holdWaiterSlot(deps.waiters, req.tenant!.id, res)) return;
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const { job } = await deps.jobs.submit(
      req.tenant!,
      {
        ...SUBMISSION_DEFAULTS,
        model: params.name,
        version: params.version,
        inputs: body.data.inputs,
        outputs: body.data.outputs,
        priority: "high",
        metadata: body.data.id ? { v2_request_id: body.data.id } : {},
        cache: body.data.parameters?.cache,
      },
      undefined,
      cancelAfter.seconds,
    );
    deps.metrics?.submitted("job", job.model);
    const done = await deps.jobs.wait(req.tenant!.id, job.id, deps.timeoutSeconds, abort.signal);
    if (!isTerminal(done.status))
      return v2Error(
        res,
        504,
        `inference did not finish within ${deps.timeoutSeconds} s; job ${done.id} is still ${done.status}`,
      );
    if (done.status !== "succeeded" || !done.result)
      return v2Error(
        res,
        done.status === "failed" ? 422 : 409,
        done.error ? `${done.error.code}: ${done.error.message}` : `job ${done.status}`,
      );
    res.json({ ...done.result, id: body.data.id ?? done.id } satisfies V2InferResponse);
  };
  const json = express.json({ limit: deps.bodyLimit, type: () => true });
  router.post("/models/:name/infer", json, serverSpan("/v2/models/:name/infer"), infer);
  router.post(
    "/models/:name/versions/:version/infer",
    json,
    serverSpan("/v2/models/:name/versions/:version/infer"),
    infer,
  );
  return router;
}
