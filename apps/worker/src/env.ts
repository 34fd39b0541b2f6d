import { z } from "zod";
import { InferenceEnv, parseEnv, SharedEnv } from "@inferline/contracts";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS } from "@inferline/db";
import {
  DEFAULT_CONNECT_TIMEOUT_MS as DEFAULT_WEBHOOK_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES as DEFAULT_WEBHOOK_MAX_BODY_BYTES,
  DEFAULT_RETRY_SCHEDULE_MS,
  DEFAULT_SWEEP_AFTER_MS,
  DEFAULT_SWEEP_INTERVAL_MS,
  DEFAULT_TENANT_CONCURRENCY,
  DEFAULT_TIMEOUT_MS as DEFAULT_WEBHOOK_TIMEOUT_MS,
  DEFAULT_WEBHOOK_CONCURRENCY,
  parseRetrySchedule,
} from "@inferline/webhooks";

export const WorkerEnv = SharedEnv.extend(InferenceEnv.shape).extend({
  /** Comma-separated model names this worker serves; "*" for every model in MODELS_DIR. */
  WORKER_MODELS: z
    .string()
    .default("*")
    .transform((s) =>
      s
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean),
    ),
  /** Queue entries (each up to 256 jobs, or one batch chunk of up to 512 items) processed at once per model version served. Default 8. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  /**
   * About how long, in ms of a slot's time, one tenant's entry runs before its worker checks
   * whether another tenant's entry is next in line, and if so hands the rest back (see
   * SlotBound); 0 runs each entry whole. Default 100.
   */
  SLOT_HOLD_MS: z.coerce.number().int().min(0).max(600_000).default(100),
  /** Inference threads per model, overriding each manifest's `instances`; 0 runs every model on the main thread. Default: the manifests'. */
  INFERENCE_THREADS: z.coerce.number().int().min(0).max(64).optional(),
  /** Threads inside one session.run. Default 1. */
  INTRA_OP_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /** How long SIGTERM waits for in-flight jobs before handing them back. Default 30000. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  /** Port of the worker's /metrics endpoint; 0 disables it. Default 9464. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** How often the reconciler looks for jobs Redis lost, in ms; 0 disables it. Default 30000. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(30_000),
  /** A queued job older than this with no queue entry is re-enqueued. Default 60000. */
  RECONCILE_AFTER_MS: z.coerce.number().int().min(0).default(60_000),
  /** Days a finished job, completed batch or settled webhook event is kept; 0 keeps them forever. Default 30. */
  RETENTION_DAYS: z.coerce.number().min(0).default(30),
  /** How often the retention pass runs, ms; 0 disables it. Default 3600000 (an hour). */
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(0).default(3_600_000),
  /**
   * How often the deadline sweep runs, ms: expires queued work past its queue deadline
   * (maxQueueSeconds) and cancels work past its Cancel-After time, so both end on time even when
   * no worker claims the work; 0 disables it (claims still check deadlines). Default 1000.
   */
  DEADLINE_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  /** Webhook deliveries in flight at once in this process; 0 runs no webhook delivery here. Default 16. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(0).max(1000).default(DEFAULT_WEBHOOK_CONCURRENCY),
  /** How long one webhook attempt may take (connect, headers and the bounded body read), in ms. Default 15000. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_TIMEOUT_MS),
  /**
   * Delay before each webhook attempt, ms, comma-separated; its length is the number of attempts.
   * Jittered ±20%; a receiver's Retry-After can lengthen a delay. Default (close to Svix):
   * immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
   */
  WEBHOOK_RETRY_SCHEDULE_MS: z
    .string()
    .default(DEFAULT_RETRY_SCHEDULE_MS.join(","))
    .transform((value, ctx) => {
      try {
        return parseRetrySchedule(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Largest webhook body sent; a larger event is recorded as a failed attempt and never sent. Default 262144 (256 KiB). */
  WEBHOOK_MAX_BODY_BYTES: z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_MAX_BODY_BYTES),
  /** How often pending webhook events with no queue entry are looked for (crash recovery), ms; 0 disables. Default 30000. */
  WEBHOOK_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(DEFAULT_SWEEP_INTERVAL_MS),
  /** A pending webhook event overdue by this much with no queue entry is re-enqueued, ms. Default 60000. */
  WEBHOOK_SWEEP_AFTER_MS: z.coerce.number().int().min(0).default(DEFAULT_SWEEP_AFTER_MS),
  /** Largest result of one job or batch item, in bytes of JSON; a larger one fails the job with `result_too_large`. Default 1048576 (1 MiB). */
  MAX_RESULT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(1024 * 1024),
  /**
   * BullMQ lock of an entry in progress, ms, renewed while it runs; also how often entries whose
   * worker died are looked for. A frozen or dead worker's entries go to another after about
   * twice this. Default 30000.
   */
  QUEUE_LOCK_MS: z.coerce.number().int().min(500).default(30_000),
  /** How old the tenants' concurrency caps (`inferline tenants set --max-running`) a worker enforces may be, in ms: it reads them all from PostgreSQL at most this often. Default 5000. */
  TENANT_CAP_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** A lease on a tenant's cap lasts this long unless its worker renews it (every third of it while the work runs): how long a dead worker's capacity stays taken. Default 30000. */
  TENANT_CAP_LEASE_MS: z.coerce.number().int().min(300).max(600_000).default(30_000),
  /** How long an entry over its tenant's cap waits on the delayed set before it is tried again, in ms (plus up to as much again, at random). Default 250. */
  TENANT_CAP_WAIT_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  /** Webhook deliveries of one tenant in flight at once in this process (manual redeliveries included); its other entries wait on the delayed set. Default 4. */
  WEBHOOK_TENANT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(DEFAULT_TENANT_CONCURRENCY),
  /** How long opening a webhook connection (DNS, TCP, TLS) may take, in ms; capped at WEBHOOK_TIMEOUT_MS. Default 5000. */
  WEBHOOK_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_CONNECT_TIMEOUT_MS),
  /** How long opening a PostgreSQL connection (or waiting for a free one) may take. Default 1500. */
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_CONNECT_TIMEOUT_MS),
  /** PostgreSQL statement_timeout of the worker's connections (0: none); result writes, reconciler and retention passes. Default 30000. */
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(DEFAULT_STATEMENT_TIMEOUT_MS),
  /**
   * How often the worker renews its report of which models it serves and which failed to load, in
   * ms (each report expires after three intervals: API processes read them to answer model
   * readiness and to refuse work for a model no worker can serve). Default 5000.
   */
  MODEL_HEARTBEAT_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  /** Bound on one Redis command of the worker's producer connection (re-enqueues, finished notices, webhook adds). Default 5000. */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(5000),
});
export type WorkerEnv = z.infer<typeof WorkerEnv>;

export const loadWorkerEnv = (source: NodeJS.ProcessEnv = process.env): WorkerEnv => parseEnv(WorkerEnv, source);
