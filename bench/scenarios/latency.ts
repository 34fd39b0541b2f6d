/**
 * latency: submit-to-result time seen by a client that POSTs a job and then long-polls
 * `GET /v1/jobs/:id?wait=10` for it, at a paced (open-loop) rate: job i starts at i/rate s
 * whatever happened to the others. The API and the worker run as their own processes
 * (apps/api/src/main.ts and apps/worker/src/main.ts, as deployed); this process is only the client
 * (undici Pool, keep-alive). The first BENCH_LATENCY_WARMUP_S seconds are not counted.
 *
 * Where the milliseconds go: the API and the worker run with INFERLINE_TRACE_HOPS (a directory
 * of this run; BENCH_LATENCY_TRACE=0 turns it off) and mark each job's hops; joined with this
 * client's own timestamps, each hop's p50/p90/p99 is printed and written as `breakdown`, beside
 * the worker's mean session run per batch from its metrics (bench/support/hop-breakdown.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { Pool } from "undici";
import { breakdown, breakdownTable, readHops, type ClientTimes } from "../support/hop-breakdown.ts";
import {
  emit,
  env,
  freePort,
  inputMaker,
  int,
  latencySummary,
  log,
  meter,
  pool,
  prefixFor,
  quantile,
  resetJobs,
  round,
  sleep,
  spawnApp,
  stopApp,
  waitHttp,
} from "./_shared.ts";

const rate = int("BENCH_LATENCY_RATE", env.model === "iris" ? 100 : 20);
const seconds = int("BENCH_LATENCY_SECONDS", 10);
const warmupSeconds = int("BENCH_LATENCY_WARMUP_S", 2);
const prefix = prefixFor("latency");
const p = pool(2);
await resetJobs(p);
const admin = new Redis(env.redisUrl);

const traceDir =
  process.env.BENCH_LATENCY_TRACE === "0" ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), "inferline-hops-"));
const shared = {
  DATABASE_URL: env.databaseUrl,
  REDIS_URL: env.redisUrl,
  QUEUE_PREFIX: prefix,
  LOG_LEVEL: "warn",
  ...(traceDir ? { INFERLINE_TRACE_HOPS: traceDir } : {}),
};
const [apiPort, metricsPort] = [await freePort(), await freePort()];
const workerSettings = {
  WORKER_MODELS: env.model,
  INFERENCE_THREADS: process.env.BENCH_WORKER_THREADS ?? (env.model === "iris" ? "0" : "2"),
  WORKER_CONCURRENCY: process.env.BENCH_WORKER_CONCURRENCY ?? "8",
};
const api = spawnApp("api", { ...shared, PORT: String(apiPort), HOST: "127.0.0.1", RATE_LIMIT_PER_SECOND: "0" });
const worker = spawnApp("worker", { ...shared, ...workerSettings, METRICS_PORT: String(metricsPort) });
const url = `http://127.0.0.1:${apiPort}`;
await Promise.all([waitHttp(`${url}/healthz`), waitHttp(`http://127.0.0.1:${metricsPort}/metrics`, 60_000)]);

const make = await inputMaker();
// cache: "bypass": these figures measure runs, comparable with runs before the result cache (the cache scenario measures hits).
const bodies = Array.from({ length: 150 }, (_, i) =>
  JSON.stringify({ model: env.model, inputs: make(i), cache: "bypass" }),
);
const client = new Pool(url, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
const headers = { authorization: `Bearer ${env.apiKey}`, "content-type": "application/json" };

interface Sample {
  total: number;
  submit: number;
  status: string;
}

/** Client-side times of the measured jobs (epoch ms, the clock the trace uses), by job id. */
const clientTimes = new Map<string, ClientTimes>();
let recordTimes = false;
const epoch = () => performance.timeOrigin + performance.now();

async function one(i: number): Promise<Sample> {
  const t0 = performance.now();
  const sent = epoch();
  const post = await client.request({ path: "/v1/jobs", method: "POST", headers, body: bodies[i % bodies.length] });
  const job = (await post.body.json()) as { id?: string };
  const t1 = performance.now();
  if (post.statusCode !== 202 || !job.id) return { total: t1 - t0, submit: t1 - t0, status: `http_${post.statusCode}` };
  const got = await client.request({ path: `/v1/jobs/${job.id}?wait=10`, method: "GET", headers });
  const view = (await got.body.json()) as { status?: string };
  if (recordTimes) clientTimes.set(job.id, { send: sent, posted: sent + (t1 - t0), done: epoch() });
  return { total: performance.now() - t0, submit: t1 - t0, status: view.status ?? `http_${got.statusCode}` };
}

async function paced(count: number): Promise<Sample[]> {
  const start = performance.now();
  const running: Promise<Sample>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    running.push(one(i));
  }
  return Promise.all(running);
}

await paced(rate * warmupSeconds);
const count = rate * seconds;
const runs0 = await inferenceRuns(metricsPort);
recordTimes = true;
const m = await meter(p, admin);
const samples = await paced(count);
const usage = await m.stop(count);
const runs1 = await inferenceRuns(metricsPort);
const runMs =
  runs1.count > runs0.count ? round(((runs1.sum - runs0.sum) * 1000) / (runs1.count - runs0.count), 3) : NaN;
const batchJobs = runs1.count > runs0.count ? round((runs1.items - runs0.items) / (runs1.count - runs0.count), 2) : NaN;
const ok = samples.filter((s) => s.status === "succeeded");
const totals = ok.map((s) => s.total).sort((a, b) => a - b);
const submits = samples.map((s) => s.submit).sort((a, b) => a - b);
const statuses: Record<string, number> = {};
for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
const ms = (x: number) => round(x, 1);
const result = {
  ...latencySummary(totals, 1),
  submitP50: ms(quantile(submits, 0.5)),
  submitP99: ms(quantile(submits, 0.99)),
};
log(
  `${count} jobs at ${rate}/s: p50 ${result.p50} ms, p90 ${result.p90} ms, p99 ${result.p99} ms (POST alone p50 ${result.submitP50} ms, p99 ${result.submitP99}); ${JSON.stringify(statuses)}`,
);
await client.close();
await Promise.all([stopApp(api), stopApp(worker)]); // each writes the rest of its trace as it exits
let hops: ReturnType<typeof breakdown> | undefined;
if (traceDir) {
  hops = breakdown(clientTimes, readHops(traceDir));
  fs.rmSync(traceDir, { recursive: true, force: true });
  log(
    `where the milliseconds go (${count} jobs at ${rate}/s):\n${breakdownTable(hops, [`worker: mean session run ${runMs} ms per batch, ${batchJobs} jobs per batch (inferline_inference_duration_seconds)`])}`,
  );
}
admin.disconnect();
await resetJobs(p);
await p.end();
emit({
  scenario: "latency",
  model: env.model,
  n: count,
  rate,
  seconds,
  ...result,
  statuses,
  worker: workerSettings,
  achievedRate: round(count / usage.seconds, 1),
  breakdown: hops && { ...hops, runMsPerBatch: runMs, jobsPerBatch: batchJobs },
  usage,
});

/** The worker's session runs so far: count, seconds in all, jobs in all (from its /metrics). */
async function inferenceRuns(port: number): Promise<{ count: number; sum: number; items: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const total = (name: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  return {
    count: total("inferline_inference_duration_seconds_count"),
    sum: total("inferline_inference_duration_seconds_sum"),
    items: total("inferline_batch_size_items_sum"),
  };
}
