import { z } from "zod";
import { ConnectionEnv, InferenceEnv, parseEnv, setting, SharedEnv } from "@inferline/contracts";
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
  RETRY_JITTER,
} from "@inferline/webhooks";

// Each setting's default is its schema's `.default()`, its description the `setting()` beside it;
// docs/configuration.md and .env.example are generated from them (pnpm generate:settings-docs).

export const WorkerEnv = SharedEnv.extend(
  ConnectionEnv({
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    // Result writes, reconciler and retention passes may read and write many rows.
    statementTimeoutMs: DEFAULT_STATEMENT_TIMEOUT_MS,
    redisCommandTimeoutMs: 5000,
  }).shape,
)
  .extend(InferenceEnv.shape)
  .extend({
    WORKER_MODELS: setting(
      z
        .string()
        .default("*")
        .transform((s) =>
          s
            .split(",")
            .map((m) => m.trim())
            .filter(Boolean),
        ),
      { description: "models this worker serves, comma-separated, or `*` for every model in `MODELS_DIR`" },
    ),
    WORKER_CONCURRENCY: setting(z.coerce.number().int().min(1).max(1000).default(8), {
      description:
        "queue entries (each up to 256 jobs, or one chunk of up to 512 batch items) processed at once per model version served",
    }),
    INFERENCE_THREADS: setting(z.coerce.number().int().min(0).max(64).optional(), {
      description:
        "inference threads per model, overriding every manifest; 0 runs every model on the main thread (best for tiny models such as iris)",
      defaultText: "unset (each manifest's `instances`)",
      example: "0",
    }),
    INTRA_OP_THREADS: setting(z.coerce.number().int().min(1).max(64).default(1), {
      description: "threads inside one `session.run`",
    }),
    MAX_RESULT_BYTES: setting(
      z.coerce
        .number()
        .int()
        .min(1024)
        .max(256 * 1024 * 1024)
        .default(1024 * 1024),
      {
        description:
          "largest result of one job or batch item, in bytes of JSON; past it the job fails `result_too_large`",
      },
    ),
    /** Also how often entries whose worker died are looked for. */
    QUEUE_LOCK_MS: setting(z.coerce.number().int().min(500).default(30_000), {
      description:
        "BullMQ lock of an entry in progress, renewed while it runs; a dead or frozen worker's entries go to another after about twice this",
    }),
    SLOT_HOLD_MS: setting(z.coerce.number().int().min(0).max(600_000).default(100), {
      description:
        "about how long one entry's run holds a worker slot while another tenant's entry waits: the worker runs an entry in slices of about this much inference and hands the rest back when another tenant's entry is next ([fair share](fair-share.md)); 0 runs each entry whole",
    }),
    TENANT_CAP_CACHE_MS: setting(z.coerce.number().int().min(0).max(60_000).default(5000), {
      description:
        "how old the tenants' concurrency caps (`inferline tenants set --max-running`) a worker enforces may be: it reads them all at most this often",
    }),
    TENANT_CAP_LEASE_MS: setting(z.coerce.number().int().min(300).max(600_000).default(30_000), {
      description:
        "a lease on a tenant's cap lasts this long unless its worker renews it (every third of it while the work runs): how long a dead worker's capacity stays taken",
    }),
    TENANT_CAP_WAIT_MS: setting(z.coerce.number().int().min(10).max(60_000).default(250), {
      description:
        "how long an entry over its tenant's cap waits on the delayed set before it is tried again (plus up to as much again, at random)",
    }),
    SHUTDOWN_TIMEOUT_MS: setting(z.coerce.number().int().min(0).default(30_000), {
      description: "how long SIGTERM waits for in-flight entries before handing them back",
    }),
    METRICS_PORT: setting(z.coerce.number().int().min(0).max(65535).default(9464), {
      description: "port of the worker's `/metrics`, `/healthz` and `/readyz`; 0 disables",
    }),
    /** API processes read these reports to answer model readiness and to refuse work for a model no worker can serve. */
    MODEL_HEARTBEAT_MS: setting(z.coerce.number().int().min(100).max(600_000).default(5000), {
      description:
        "how often the worker renews its report of the models it serves and those that failed to load (each report expires after three intervals)",
    }),
    RECONCILE_INTERVAL_MS: setting(z.coerce.number().int().min(0).default(30_000), {
      description: "how often the reconciler looks for queue entries Redis lost; 0 disables",
    }),
    RECONCILE_AFTER_MS: setting(z.coerce.number().int().min(0).default(60_000), {
      description: "an entry older than this that no queue holds is added again",
    }),
    RETENTION_DAYS: setting(z.coerce.number().min(0).default(30), {
      description: "days a finished job, completed batch or settled webhook event is kept; 0 keeps them forever",
    }),
    RETENTION_INTERVAL_MS: setting(z.coerce.number().int().min(0).default(3_600_000), {
      description: "how often the retention pass runs; 0 disables",
    }),
    DEADLINE_SWEEP_INTERVAL_MS: setting(z.coerce.number().int().min(0).default(1000), {
      description:
        "how often the deadline sweep ends work past its queue deadline (`expired`) or its `Cancel-After` time (`canceled`) that no worker claims; 0 disables (claims still check)",
    }),
    WEBHOOK_CONCURRENCY: setting(z.coerce.number().int().min(0).max(1000).default(DEFAULT_WEBHOOK_CONCURRENCY), {
      description: "webhook deliveries in flight in this process; 0 delivers none here",
    }),
    /** Its other entries wait on the delayed set, so one tenant's slow receiver cannot hold every slot. */
    WEBHOOK_TENANT_CONCURRENCY: setting(z.coerce.number().int().min(1).max(1000).default(DEFAULT_TENANT_CONCURRENCY), {
      description: "deliveries of one tenant in flight in this process (redeliveries included)",
    }),
    WEBHOOK_TIMEOUT_MS: setting(z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_TIMEOUT_MS), {
      description: "one attempt: connect, headers and the bounded body read",
    }),
    WEBHOOK_CONNECT_TIMEOUT_MS: setting(z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_CONNECT_TIMEOUT_MS), {
      description: "opening a webhook connection (DNS, TCP, TLS); capped at `WEBHOOK_TIMEOUT_MS`",
    }),
    WEBHOOK_RETRY_SCHEDULE_MS: setting(
      z
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
      {
        description: `delay before each attempt, comma-separated (its length is the number of attempts), jittered ±${RETRY_JITTER * 100}%; a receiver's \`Retry-After\` can lengthen a delay`,
      },
    ),
    WEBHOOK_MAX_BODY_BYTES: setting(z.coerce.number().int().min(1).default(DEFAULT_WEBHOOK_MAX_BODY_BYTES), {
      description: "largest webhook body sent; a larger event is recorded as a failed attempt and never sent",
    }),
    WEBHOOK_SWEEP_INTERVAL_MS: setting(z.coerce.number().int().min(0).default(DEFAULT_SWEEP_INTERVAL_MS), {
      description: "how often pending webhook events with no queue entry are looked for (crash recovery); 0 disables",
    }),
    WEBHOOK_SWEEP_AFTER_MS: setting(z.coerce.number().int().min(0).default(DEFAULT_SWEEP_AFTER_MS), {
      description: "a pending event overdue by this much with no queue entry is queued again",
    }),
  });
export type WorkerEnv = z.infer<typeof WorkerEnv>;

export const loadWorkerEnv = (source: NodeJS.ProcessEnv = process.env): WorkerEnv => parseEnv(WorkerEnv, source);
