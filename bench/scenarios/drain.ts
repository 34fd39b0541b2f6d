/**
 * drain: Inferline's real worker (startWorker from apps/worker, in this process, default settings
 * unless overridden) draining N jobs that were stored as the submit path stores them: rows
 * inserted with JobStore.insertMany after Dispatcher.plan stamped their dispatch ids, queue
 * entries added with Dispatcher.enqueue (up to 256 jobs per entry). Results are persisted in
 * PostgreSQL; completion is counted from the worker's own job-finished announcements on Redis.
 *
 * Timing starts once the worker is up (models loaded and warmed) and just before the entries are
 * enqueued (N/256 entries: a few ms), and ends when the last job is announced finished.
 */
import crypto from "node:crypto";
import { Redis } from "ioredis";
import pino from "pino";
import { JobStore, type NewJob } from "@inferline/db";
import { createRedis, Dispatcher } from "@inferline/queue";
import { loadWorkerEnv, startWorker } from "@inferline/worker";
import {
  emit,
  env,
  finishedCounter,
  inputMaker,
  log,
  meter,
  pool,
  prefixFor,
  resetJobs,
  round,
  tenantId,
  VERSION,
} from "./_shared.ts";

const N = env.n;
const prefix = prefixFor("drain");
const p = pool(4);
await resetJobs(p);
const admin = new Redis(env.redisUrl);
const store = new JobStore(p, undefined as never);
const redis = createRedis(env.redisUrl);
const dispatcher = new Dispatcher(redis, { prefix });

const make = await inputMaker();
const tenant = await tenantId(p);
const jobs: NewJob[] = Array.from({ length: N }, (_, i) => ({
  id: crypto.randomUUID(),
  tenantId: tenant,
  model: env.model,
  version: VERSION[env.model],
  priority: "normal",
  inputs: make(i),
  requestedOutputs: [],
  metadata: {},
  webhook: null,
  idempotencyKey: null,
  requestHash: null,
  dispatchId: null,
  queueDeadline: null,
  cancelAt: null,
  createdAt: new Date(),
}));
const groups = dispatcher.plan(env.model, VERSION[env.model], "normal", jobs);
let t = performance.now();
await store.insertMany(jobs);
const insertRowsPerSecond = round(N / ((performance.now() - t) / 1000), 0);
log(`insertMany: ${insertRowsPerSecond} rows/s; ${groups.length} queue entries`);

// The worker's settings: its defaults, except what the bench (or BENCH_WORKER_* variables) sets.
const settings: Record<string, string> = {
  WORKER_CONCURRENCY: process.env.BENCH_WORKER_CONCURRENCY ?? "8",
  INFERENCE_THREADS: process.env.BENCH_WORKER_THREADS ?? (env.model === "iris" ? "0" : "2"),
  INTRA_OP_THREADS: process.env.BENCH_WORKER_INTRA ?? "1",
};
const counter = await finishedCounter(prefix);
const worker = await startWorker(
  loadWorkerEnv({
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    QUEUE_PREFIX: prefix,
    WORKER_MODELS: env.model,
    METRICS_PORT: "0",
    LOG_LEVEL: "warn",
    ...settings,
    ...(process.env.BENCH_MODELS_DIR ? { MODELS_DIR: process.env.BENCH_MODELS_DIR } : {}),
  }),
  pino({ level: "warn" }),
);
const m = await meter(p, admin);
t = performance.now();
await dispatcher.enqueue(groups);
const enqueueMs = round(performance.now() - t, 1);
const endedAt = await counter.until(N, 600_000);
const usage = await m.stop(N, endedAt);
const jobsPerSecond = round(N / usage.seconds, 0);
const { rows } = await p.query<{ status: string; n: number }>(`select status, count(*)::int as n from jobs group by 1`);
const statuses = Object.fromEntries(rows.map((r) => [r.status, r.n]));
const batchHistogram = await batchSizes(worker.metrics);
log(
  `${N} jobs in ${usage.seconds} s = ${jobsPerSecond} jobs/s; statuses ${JSON.stringify(statuses)}; enqueue ${enqueueMs} ms`,
);
counter.close();
await worker.close();
await dispatcher.close();
redis.disconnect();
admin.disconnect();
await resetJobs(p);
await p.end();
emit({
  scenario: "drain",
  model: env.model,
  n: N,
  jobsPerSecond,
  statuses,
  insertRowsPerSecond,
  queueEntries: groups.length,
  enqueueMs,
  worker: settings,
  batches: batchHistogram,
  usage,
});

/** Mean items per session.run, from the worker's own Prometheus histogram (when it has one). */
async function batchSizes(metrics: unknown): Promise<unknown> {
  try {
    const registry = (
      metrics as {
        registry?: {
          getMetricsAsJSON(): Promise<
            Array<{
              name: string;
              values: Array<{ metricName?: string; value: number; labels: Record<string, string> }>;
            }>
          >;
        };
      }
    ).registry;
    if (!registry) return undefined;
    const all = await registry.getMetricsAsJSON();
    const out: Record<string, number> = {};
    for (const metric of all) {
      if (!/batch|inference/.test(metric.name)) continue;
      for (const v of metric.values) {
        if (v.metricName?.endsWith("_sum") || v.metricName?.endsWith("_count"))
          out[v.metricName] = round((out[v.metricName] ?? 0) + v.value, 3);
      }
    }
    return out;
  } catch {
    return undefined;
  }
}
