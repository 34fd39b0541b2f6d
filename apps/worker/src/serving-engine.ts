import crypto from "node:crypto";
import os from "node:os";
import type { Logger } from "pino";
import { InferlineError, type WorkerModelReport } from "@inferline/contracts";
import { ModelRepository, modelFingerprint, type ResolvedModel } from "@inferline/runtime";
import {
  InferenceEngine,
  InProcessRunner,
  ThreadPoolRunner,
  type ModelLoadFailure,
  type ModelRunner,
} from "@inferline/inference";
import type { WorkerEnv } from "./env.ts";
import type { WorkerMetrics } from "./metrics.ts";
import type { CachedModels } from "./cache-writer.ts";

/** The engine a worker serves from, and the models it loaded. */
export interface ServingEngine {
  engine: InferenceEngine;
  /** WORKER_MODELS that loaded, in their order; a model that failed to load is left out. */
  models: string[];
  /** The model versions that loaded: the queues this worker consumes (a version it lacks or failed is left to others). */
  versions: ServedVersion[];
  /** The manifests they were loaded from (the result cache's settings are read there). */
  repository: ModelRepository;
  /** Every model this worker was told to serve (WORKER_MODELS, "*" expanded), loaded or not. */
  wanted: string[];
  /** The model versions that failed to load or warm up: reported unready, their queues not consumed. */
  failed: ModelLoadFailure[];
}

/** A model version a worker loaded, whose queue it consumes. */
export interface ServedVersion {
  model: string;
  version: string;
}

/**
 * Loads `env.WORKER_MODELS` ("*": every model of the repository) into one engine whose session
 * runs feed the worker's metrics. One model that fails to load (a bad file, a missing package)
 * leaves the others served.
 */
export async function loadServingEngine(
  env: WorkerEnv,
  metrics: WorkerMetrics,
  logger: Logger,
): Promise<ServingEngine> {
  const repo = ModelRepository.load(env.MODELS_DIR);
  const wanted = env.WORKER_MODELS.includes("*") ? repo.names() : env.WORKER_MODELS;
  const engine = new InferenceEngine(runnerChooser(env, logger), {
    onBatch(model, version, items, rows, seconds) {
      metrics.batchSize.observe({ model, version }, items);
      metrics.batchRows.observe({ model, version }, rows);
      metrics.inferenceSeconds.observe({ model, version }, seconds);
    },
    onLoadFailed(model, version, err) {
      logger.error(
        { model, version, err: err.message },
        `model failed to load; this worker does not serve it and reports it unready (\`inferline models check ${model}\` compares its manifest with its ONNX file)`,
      );
    },
  });
  const { loaded, served, failed } = await engine.load(InferenceEngine.resolveAll(repo, wanted), { partial: true });
  if (served.length === 0 && wanted.length > 0)
    logger.error({ models: wanted }, "no model loaded; this worker serves none of its models and reports them unready");
  // Read now, right after the sessions loaded these files, and never on a job's path.
  for (const m of loaded) if (m.manifest.cache) modelFingerprint(m);
  const versions = loaded.map((m) => ({ model: m.manifest.name, version: m.version }));
  return { engine, models: wanted.filter((m) => served.includes(m)), versions, repository: repo, wanted, failed };
}

/** The cache settings of the repository's models, and the fingerprints of the files this worker loaded (see CacheWriter). */
export function cachedModels(repository: ModelRepository): CachedModels {
  return {
    spec: (model) => (repository.has(model) ? repository.manifest(model).cache : undefined),
    fingerprint: (model, version) => modelFingerprint(repository.resolve(model, version)),
  };
}

/** This worker process's name in its readiness reports: host, pid and a random suffix (a pid can come back after a restart). */
export function workerInstanceId(): string {
  return `${os.hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * What this worker says about each model it was told to serve (see ModelReadinessPublisher): every
 * version of the manifest, ready unless it failed to load. Failures go by their code only; the
 * message (files, hosts) stays in this worker's log.
 */
export function readinessReports(
  worker: string,
  serving: Pick<ServingEngine, "wanted" | "failed" | "repository">,
): WorkerModelReport[] {
  return serving.wanted.map((model) => ({
    worker,
    model,
    versions: serving.repository.manifest(model).versions.map(({ version }) => {
      const failure = serving.failed.find((f) => f.model.manifest.name === model && f.model.version === version);
      return failure
        ? { version, ready: false, code: failure.error instanceof InferlineError ? failure.error.code : "load_failed" }
        : { version, ready: true };
    }),
  }));
}

/** Tiny models run on this thread; a model with `instances` (or INFERENCE_THREADS) gets a thread pool of its own. */
function runnerChooser(env: WorkerEnv, logger: Logger): (model: ResolvedModel) => ModelRunner {
  const settings = {
    intraOpThreads: env.INTRA_OP_THREADS,
    adapterModules: env.INFERENCE_ADAPTER_MODULES,
    timeoutOverrideMs: env.INFERENCE_TIMEOUT_MS,
    logger,
  };
  const mainThread = new InProcessRunner(settings);
  const pools = new Map<string, ThreadPoolRunner>();
  return (m) => {
    const threads = env.INFERENCE_THREADS ?? m.manifest.instances;
    if (threads === 0) return mainThread;
    let pool = pools.get(m.manifest.name);
    if (!pool) pools.set(m.manifest.name, (pool = new ThreadPoolRunner(threads, settings)));
    return pool;
  };
}
