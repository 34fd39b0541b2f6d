/**
 * fairness: what a heavy tenant's backlog costs a light tenant. Tenant B submits
 * BENCH_FAIRNESS_RATE jobs/s (iris 10, ocr-text-line 2) for BENCH_FAIRNESS_SECONDS (default 20),
 * paced (open-loop), each POSTed and then long-polled to its result, twice: with tenant A idle,
 * and right after A queued a backlog while no worker ran: BENCH_N jobs (iris 100,000,
 * ocr-text-line 2,000), POSTed (or stored as the submit path stores them with
 * BENCH_FAIRNESS_ENTRY), and a BENCH_FAIRNESS_BATCH-item batch (iris 100,000, ocr-text-line
 * 2,000) POSTed as NDJSON, all with the cache bypassed. The worker starts (and is ready) just
 * before B's second run. In both runs B's first BENCH_FAIRNESS_WARMUP_S (2) seconds of jobs, on a
 * worker just started, are not counted. Each variable may be given per model too (BENCH_IRIS_FAIRNESS_RATE, BENCH_OCR_FAIRNESS_RATE…).
 * BENCH_FAIRNESS_TRACE=1 logs each of B's jobs: ms from the run's start to its creation, its wait
 * for a worker and its claim to result.
 *
 * Reports B's p50/p90/p99 submit-to-result latency in both runs, the same for B's jobs submitted
 * while A still had work queued (A's backlog drains in a few seconds here, so most of B's second
 * run no longer competes with it), how long A's backlog lasted (polled through
 * GET /v1/models/iris/queue as A), and fairnessP99Ratio = B's p99 with A's backlog / with A idle.
 * The API and the worker run as their own processes, as deployed; this process is the clients.
 */
import crypto from "node:crypto";
import { Redis } from "ioredis";
import { Pool } from "undici";
import { Database, JobStore, TenantStore, type NewJob } from "@inferline/db";
import { createRedis, Dispatcher } from "@inferline/queue";
import {
  emit,
  env,
  freePort,
  inputMaker,
  int,
  log,
  pool,
  prefixFor,
  quantile,
  resetJobs,
  round,
  sleep,
  spawnApp,
  stopApp,
  VERSION,
  waitHttp,
} from "./_shared.ts";

const model = env.model;
const iris = model === "iris";
/** A setting of the scenario: BENCH_<MODEL>_FAIRNESS_<NAME>, else BENCH_FAIRNESS_<NAME>, else the model's default. */
const setting = (name: string, irisDefault: number, ocrDefault: number): number =>
  int(
    `BENCH_${iris ? "IRIS" : "OCR"}_FAIRNESS_${name}`,
    int(`BENCH_FAIRNESS_${name}`, iris ? irisDefault : ocrDefault),
  );
const rate = setting("RATE", 10, 2);
const seconds = setting("SECONDS", 20, 20);
const warmupSeconds = setting("WARMUP_S", 2, 2);
const batchItems = setting("BATCH", 100_000, 2_000);
/** 0 (default): A's jobs are POSTed, BENCH_FAIRNESS_SUBMIT_CONCURRENCY (64) at a time; N: stored directly in queue entries of N jobs (256 is the largest a write makes). */
const entrySize = setting("ENTRY", 0, 0);
const submitConcurrency = setting("SUBMIT_CONCURRENCY", 64, 64);
const backlogJobs = env.n;
const version = VERSION[model];
const inputsOf = await inputMaker();

const prefix = prefixFor("fairness");
const p = pool(4);
await resetJobs(p);
const admin = new Redis(env.redisUrl);
const db = new Database(env.databaseUrl, { poolSize: 2 });
const tenants = new TenantStore(db.pool, db.prisma);
const suffix = crypto.randomBytes(3).toString("hex");
const [heavy, light] = [
  await tenants.createKey(`bench-heavy-${suffix}`),
  await tenants.createKey(`bench-light-${suffix}`),
];

const shared = { DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, QUEUE_PREFIX: prefix, LOG_LEVEL: "warn" };
const apiPort = await freePort();
const workerSettings = {
  WORKER_MODELS: model,
  INFERENCE_THREADS: process.env.BENCH_WORKER_THREADS ?? (iris ? "0" : "2"),
  WORKER_CONCURRENCY: process.env.BENCH_WORKER_CONCURRENCY ?? "8",
};
const api = spawnApp("api", {
  ...shared,
  PORT: String(apiPort),
  HOST: "127.0.0.1",
  RATE_LIMIT_PER_SECOND: "0",
  BATCH_BODY_LIMIT: "500mb",
});
const url = `http://127.0.0.1:${apiPort}`;
await waitHttp(`${url}/healthz`);
const client = new Pool(url, {
  connections: 128,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 120_000,
  bodyTimeout: 120_000,
});
const headersOf = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

async function startWorker() {
  const metricsPort = await freePort();
  const worker = spawnApp("worker", { ...shared, ...workerSettings, METRICS_PORT: String(metricsPort) });
  // Ready: models loaded and warmed, queues consumed (B's runs measure a serving worker, not its start).
  await waitHttp(`http://127.0.0.1:${metricsPort}/readyz`, 60_000);
  return worker;
}

interface Sample {
  startedAt: number;
  total: number;
  /** The POST alone. */
  submit: number;
  status: string;
}

/** One of B's jobs: POST, then long-poll until it is terminal. */
async function one(i: number): Promise<Sample> {
  const startedAt = performance.now();
  const headers = headersOf(light.key);
  const post = await client.request({
    path: "/v1/jobs",
    method: "POST",
    headers,
    body: JSON.stringify({ model, inputs: inputsOf(i), cache: "bypass" }),
  });
  const job = (await post.body.json()) as { id?: string };
  const submit = performance.now() - startedAt;
  if (post.statusCode !== 202 || !job.id)
    return { startedAt, total: submit, submit, status: `http_${post.statusCode}` };
  for (;;) {
    const got = await client.request({ path: `/v1/jobs/${job.id}?wait=30`, method: "GET", headers });
    const view = (await got.body.json()) as { status?: string };
    if (got.statusCode !== 200 || !["queued", "running"].includes(view.status ?? ""))
      return {
        startedAt,
        total: performance.now() - startedAt,
        submit,
        status: view.status ?? `http_${got.statusCode}`,
      };
  }
}

async function paced(count: number): Promise<Sample[]> {
  const start = performance.now();
  const running: Promise<Sample>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    running.push(one(i));
  }
  return Promise.all(running);
}

function summary(samples: Sample[]) {
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  const ok = sorted(samples.filter((s) => s.status === "succeeded").map((s) => s.total));
  const submits = sorted(samples.map((s) => s.submit));
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const ms = (x: number) => round(x, 1);
  return {
    n: samples.length,
    p50: ms(quantile(ok, 0.5)),
    p90: ms(quantile(ok, 0.9)),
    p99: ms(quantile(ok, 0.99)),
    max: ms(ok[ok.length - 1] ?? NaN),
    submitP50: ms(quantile(submits, 0.5)),
    submitP99: ms(quantile(submits, 0.99)),
    statuses,
  };
}

/** A's backlog: its jobs (through the API, or stored directly with BENCH_FAIRNESS_ENTRY), then its batch through the API. */
async function queueBacklog(): Promise<{ jobsSeconds: number; batchSeconds: number; entries: number }> {
  let t = performance.now();
  const entries = entrySize > 0 ? await storeJobs(entrySize) : await postJobs();
  const jobsSeconds = round((performance.now() - t) / 1000, 2);
  t = performance.now();
  if (batchItems > 0) {
    const lines = Array.from({ length: batchItems }, (_, i) => JSON.stringify({ inputs: inputsOf(i) })).join("\n");
    const created = await client.request({
      path: `/v1/batches?model=${model}&priority=normal&cache=bypass`,
      method: "POST",
      headers: { ...headersOf(heavy.key), "content-type": "application/x-ndjson" },
      body: lines,
    });
    const body = (await created.body.json()) as { detail?: string };
    if (created.statusCode !== 202) throw new Error(`A's batch was refused: ${created.statusCode} ${body.detail}`);
  }
  return { jobsSeconds, batchSeconds: round((performance.now() - t) / 1000, 2), entries };
}

/** A's jobs POSTed, BENCH_FAIRNESS_SUBMIT_CONCURRENCY at a time: queue entries as the API's group commit forms them. Returns how many entries. */
async function postJobs(): Promise<number> {
  let next = 0;
  await Promise.all(
    Array.from({ length: submitConcurrency }, async () => {
      while (next < backlogJobs) {
        const body = JSON.stringify({ model, inputs: inputsOf(next++), cache: "bypass" });
        const res = await client.request({ path: "/v1/jobs", method: "POST", headers: headersOf(heavy.key), body });
        await res.body.dump();
        if (res.statusCode !== 202) throw new Error(`A's submit was refused: ${res.statusCode}`);
      }
    }),
  );
  const { rows: counted } = await p.query<{ n: number }>(
    `select count(*)::int as n from dispatches where "tenantId" = $1 and not "batchChunk"`,
    [heavy.tenant.id],
  );
  return counted[0]!.n;
}

/** A's jobs stored and enqueued as SubmitWriter does (ranked entries), `size` jobs per entry: the largest entries a write can make. */
async function storeJobs(size: number): Promise<number> {
  const store = new JobStore(p, undefined as never);
  const redis = createRedis(env.redisUrl);
  const dispatcher = new Dispatcher(redis, { prefix });
  let entries = 0;
  for (let from = 0; from < backlogJobs; from += 20_000) {
    const jobs: NewJob[] = Array.from({ length: Math.min(20_000, backlogJobs - from) }, (_, i) => ({
      id: crypto.randomUUID(),
      tenantId: heavy.tenant.id,
      model,
      version,
      priority: "normal",
      inputs: inputsOf(from + i),
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
    const groups = dispatcher.plan(model, version, "normal", jobs, size);
    await store.insertMany(jobs);
    // Ranked as SubmitWriter ranks them: A's queued work ahead of each entry (it had none before).
    await dispatcher.enqueue(groups.map((g, i) => ({ ...g, rank: from + i * size, weight: heavy.tenant.weight })));
    entries += groups.length;
  }
  await dispatcher.close();
  redis.disconnect();
  return entries;
}

/** Polls A's queue status until it has nothing queued or running; resolves with when that was seen (performance.now() and Date.now()). */
async function backlogEnd(): Promise<{ at: number; wall: number }> {
  for (;;) {
    const res = await client.request({
      path: `/v1/models/${model}/queue`,
      method: "GET",
      headers: headersOf(heavy.key),
    });
    const q = (await res.body.json()) as { tenant?: { queued: number; running: number } };
    if (res.statusCode === 200 && q.tenant && q.tenant.queued + q.tenant.running === 0)
      return { at: performance.now(), wall: Date.now() };
    await sleep(100);
  }
}

/** Logs each of B's jobs created from `from` to `to`: ms from `from` to its creation, its wait for a worker, its claim to result. */
async function trace(from: number, to: number): Promise<void> {
  const { rows } = await p.query<{ at: string; wait: string; run: string }>(
    `select extract(epoch from "createdAt" - $2) * 1000 as at, extract(epoch from "startedAt" - "createdAt") * 1000 as wait,
       extract(epoch from "completedAt" - "startedAt") * 1000 as run
     from jobs where "tenantId" = $1 and "createdAt" >= $2 and "createdAt" < $3 order by "createdAt"`,
    [light.tenant.id, new Date(from), new Date(to)],
  );
  const ms = (x: string) => Math.round(Number(x));
  log(`trace: ${rows.map((r) => `${ms(r.at)}:${ms(r.wait)}+${ms(r.run)}`).join(" ")}`);
}

/**
 * Where B's milliseconds went, from its jobs' rows (created by the API, started by the worker's
 * claim, completed by the result write; one machine, one clock): p50 and p99 of the wait for a
 * worker and of claim-to-result, for jobs created from `from` to `to` (ms since the epoch).
 */
async function breakdown(from: number, to: number) {
  const { rows } = await p.query<{ wait: number; run: number }>(
    `select extract(epoch from "startedAt" - "createdAt") * 1000 as wait, extract(epoch from "completedAt" - "startedAt") * 1000 as run
     from jobs where "tenantId" = $1 and "createdAt" >= $2 and "createdAt" < $3 and status = 'succeeded'`,
    [light.tenant.id, new Date(from), new Date(to)],
  );
  if (process.env.BENCH_FAIRNESS_TRACE) await trace(from, to);
  const of = (xs: number[]) => {
    const sorted = xs.sort((a, b) => a - b);
    return { p50: round(quantile(sorted, 0.5), 1), p99: round(quantile(sorted, 0.99), 1) };
  };
  return {
    n: rows.length,
    waitForWorker: of(rows.map((r) => Number(r.wait))),
    claimToResult: of(rows.map((r) => Number(r.run))),
  };
}

const count = rate * seconds;

// 1. A idle.
let worker = await startWorker();
await paced(rate * warmupSeconds);
const idleFrom = Date.now();
const idle = await paced(count);
const idleParts = await breakdown(idleFrom, Date.now());
log(`A idle: ${JSON.stringify(summary(idle))}`);
await stopApp(worker);

// 2. A's backlog queued with no worker running, then the worker starts and B submits again.
const queued = await queueBacklog();
log(
  `A queued ${backlogJobs} jobs (${queued.entries} queue entries) in ${queued.jobsSeconds} s and a ${batchItems}-item batch in ${queued.batchSeconds} s`,
);
worker = await startWorker();
const backlogStart = performance.now();
const drained = backlogEnd();
// B's first jobs on the just-started worker are left out, as in the idle run: both compare warm workers.
await paced(rate * warmupSeconds);
const contendedFrom = Date.now();
const contended = await paced(count);
const drainedAt = await drained;
const during = contended.filter((s) => s.startedAt < drainedAt.at);
const result = {
  idle: summary(idle),
  contended: summary(contended),
  whileBacklogged: summary(during),
  backlogSeconds: round((drainedAt.at - backlogStart) / 1000, 2),
  backlog: { jobs: backlogJobs, batchItems, ...queued },
  // Where B's time went (ms): waiting for a worker, and from its claim to its result.
  parts: { idle: idleParts, whileBacklogged: await breakdown(contendedFrom, drainedAt.wall) },
};
log(`B's time (wait for a worker / claim to result): ${JSON.stringify(result.parts)}`);
const fairnessP99Ratio = round(result.contended.p99 / result.idle.p99, 2);
log(
  `A's backlog drained ${result.backlogSeconds} s after the worker started; B with A's backlog: ${JSON.stringify(result.contended)}; while A had work queued: ${JSON.stringify(result.whileBacklogged)}`,
);
log(`fairnessP99Ratio ${fairnessP99Ratio}`);

await client.close();
await Promise.all([stopApp(api), stopApp(worker)]);
admin.disconnect();
await db.close();
await resetJobs(p);
await p.end();
emit({
  scenario: "fairness",
  model: env.model,
  n: count,
  rate,
  seconds,
  ...result,
  fairnessP99Ratio,
  worker: workerSettings,
});
