import { z } from "zod";
import { envBoolean, parseEnv, SharedEnv } from "@inferline/contracts";

export const WorkerEnv = SharedEnv.extend({
  /** Comma-separated model names this worker serves; "*" for every model in MODELS_DIR. */
  WORKER_MODELS: z.string().default("*").transform((s) => s.split(",").map((m) => m.trim()).filter(Boolean)),
  /** Queue entries (each up to DISPATCH_GROUP_SIZE jobs) processed at once per model. Default 8. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  /** Inference threads; 0 runs sessions on the main thread (best for tiny models). Default 0. */
  INFERENCE_THREADS: z.coerce.number().int().min(0).max(64).default(0),
  /** Threads inside one session.run. Default 1. */
  INTRA_OP_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /** Attempts of a queue entry before its jobs fail for good. Default 5. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  /** First retry delay in ms, doubling each attempt with jitter. Default 1000. */
  RETRY_BACKOFF_MS: z.coerce.number().int().min(0).default(1000),
  /** How long SIGTERM waits for in-flight jobs before handing them back. Default 30000. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  /** Port of the worker's /metrics endpoint; 0 disables it. Default 9464. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** How often the reconciler looks for jobs Redis lost, in ms; 0 disables it. Default 30000. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(30_000),
  /** A queued job older than this with no queue entry is re-enqueued. Default 60000. */
  RECONCILE_AFTER_MS: z.coerce.number().int().min(0).default(60_000),
  LOG_PRETTY: envBoolean.default(false),
});
export type WorkerEnv = z.infer<typeof WorkerEnv>;

export const loadWorkerEnv = (source: NodeJS.ProcessEnv = process.env): WorkerEnv => parseEnv(WorkerEnv, source);
