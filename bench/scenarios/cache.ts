/**
 * cache: the result cache (iris's manifest sets `cache`), hits beside misses in one run. The API
 * and a worker run as their own processes (as deployed); this process is the client: BENCH_CACHE_CONCURRENCY
 * (default 32) closed-loop clients, each POSTing a job and, unless the 202 already carries the
 * result, long-polling `GET /v1/jobs/:id?wait=10` for it. Submit-to-result time and jobs/s of:
 *
 *  - miss: N jobs whose inputs were never sent (distinct rows): each is looked up, misses, leads
 *    its flight, runs and has its result stored: the whole miss path;
 *  - hit: N jobs whose inputs were primed (sent once and run before the measurement): each is
 *    answered from the cache in its 202, never queued or run;
 *  - bypass, for reference: the primed rows again with `cache: "bypass"` (they run).
 *
 * The same in batches (BENCH_CACHE_BATCH items, default 10,000): a batch of items never scored
 * against the same batch sent again (all hits), creation to completed.
 *
 * Ratios: cacheHitOverMissJobsPerSecond (goal ≥ 3) and cacheHitP50OverMiss (goal ≤ 1/3).
 */
import { Redis } from "ioredis";
import { Pool } from "undici";
import {
  childPids,
  emit,
  env,
  freePort,
  int,
  log,
  meter,
  pool,
  prefixFor,
  quantile,
  resetJobs,
  round,
  spawnApp,
  stopApp,
  waitHttp,
} from "./_shared.ts";

if (env.model !== "iris")
  throw new Error("the cache scenario runs on iris (a small model whose manifest sets `cache`)");
const N = env.n;
const concurrency = int("BENCH_CACHE_CONCURRENCY", 32);
const batchItems = int("BENCH_CACHE_BATCH", 10_000);
const prefix = prefixFor("cache");
const p = pool(2);
await resetJobs(p);
const admin = new Redis(env.redisUrl);
// A scenario that fails must not leave its API and worker running (they would hold the bench's database).
process.on("exit", () => {
  for (const pid of childPids.keys()) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone already */
    }
  }
});

const shared = { DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, QUEUE_PREFIX: prefix, LOG_LEVEL: "warn" };
const [apiPort, metricsPort] = [await freePort(), await freePort()];
const api = spawnApp("api", { ...shared, PORT: String(apiPort), HOST: "127.0.0.1", RATE_LIMIT_PER_SECOND: "0" });
const worker = spawnApp("worker", {
  ...shared,
  WORKER_MODELS: "iris",
  INFERENCE_THREADS: "0",
  WORKER_CONCURRENCY: process.env.BENCH_WORKER_CONCURRENCY ?? "8",
  METRICS_PORT: String(metricsPort),
});
const url = `http://127.0.0.1:${apiPort}`;
await Promise.all([waitHttp(`${url}/healthz`), waitHttp(`http://127.0.0.1:${metricsPort}/metrics`, 60_000)]);
const client = new Pool(url, { connections: concurrency + 4, pipelining: 1, keepAliveTimeout: 60_000 });
const headers = { authorization: `Bearer ${env.apiKey}`, "content-type": "application/json" };

/** Row i of an endless supply of distinct iris inputs (every row differs from every other). */
const row = (i: number) => [4 + (i % 1000) / 1000, 2 + Math.floor(i / 1000) / 1000, 1.4, 0.2];
const body = (i: number, bypass: boolean) =>
  JSON.stringify({
    model: "iris",
    inputs: [{ name: "features", shape: [1, 4], datatype: "FP32", data: row(i) }],
    ...(bypass ? { cache: "bypass" } : {}),
  });

interface Sample {
  ms: number;
  status: string;
  cached: boolean;
}

async function one(i: number, bypass: boolean): Promise<Sample> {
  const t0 = performance.now();
  const post = await client.request({ path: "/v1/jobs", method: "POST", headers, body: body(i, bypass) });
  let view = (await post.body.json()) as { id?: string; status?: string; cached?: boolean };
  // A hit is answered in the 202 itself (succeeded, with its result); anything else is waited for.
  while (view.id && (view.status === "queued" || view.status === "running")) {
    const got = await client.request({ path: `/v1/jobs/${view.id}?wait=10`, method: "GET", headers });
    view = (await got.body.json()) as typeof view;
  }
  return { ms: performance.now() - t0, status: view.status ?? `http_${post.statusCode}`, cached: view.cached === true };
}

/** Jobs `from` … `from + count - 1` by `concurrency` closed-loop clients. */
async function closedLoop(from: number, count: number, bypass = false): Promise<Sample[]> {
  const samples: Sample[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) samples.push(await one(from + next++, bypass));
    }),
  );
  return samples;
}

async function workerCacheWrites(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = /^inferline_cache_writes_total\{model="iris",outcome="stored"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

async function measure(name: string, from: number, bypass = false) {
  const m = await meter(p, admin);
  const samples = await closedLoop(from, N, bypass);
  const usage = await m.stop(N);
  const ok = samples.filter((s) => s.status === "succeeded");
  const sorted = ok.map((s) => s.ms).sort((a, b) => a - b);
  const figures = {
    jobsPerSecond: round(ok.length / usage.seconds, 0),
    p50: round(quantile(sorted, 0.5), 2),
    p90: round(quantile(sorted, 0.9), 2),
    p99: round(quantile(sorted, 0.99), 2),
    cachedShare: round(ok.filter((s) => s.cached).length / Math.max(1, ok.length), 3),
    failed: samples.length - ok.length,
    usage,
  };
  log(
    `${name}: ${N} jobs at concurrency ${concurrency}: ${figures.jobsPerSecond} jobs/s, p50 ${figures.p50} ms, p99 ${figures.p99} ms, cached ${figures.cachedShare * 100}%`,
  );
  return figures;
}

if (!env.apiKey) throw new Error("BENCH_API_KEY is not set (bench/run.ts creates one)");
// Warm-up (distinct rows far from the measured ones): JIT, connections, the model's session.
await closedLoop(10_000_000, 2000);

// Prime: rows 0 … N-1 run once, and their results are stored, before anything is measured.
const stored0 = await workerCacheWrites();
await closedLoop(0, N);
const deadline = Date.now() + 30_000;
while ((await workerCacheWrites()) - stored0 < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
log(`primed ${(await workerCacheWrites()) - stored0} entries`);

// Misses first (rows never sent: N … 2N-1), then the primed rows: all hits.
const miss = await measure("0% hits", N);
const hit = await measure("100% hits", 0);
// For reference: the same rows run with cache: "bypass" (no lookup, no flight; the result is still stored), what a run cost before the cache.
const bypass = await measure("bypass", 0, true);

// Batches: items never scored, then the same items again (every item a hit, completed at creation).
async function batchRun(from: number): Promise<{ seconds: number; itemsPerSecond: number; cached: number }> {
  const items = Array.from({ length: batchItems }, (_, i) => ({
    inputs: [{ name: "features", shape: [1, 4], datatype: "FP32", data: row(20_000_000 + from + i) }],
  }));
  const t0 = performance.now();
  const created = await client.request({
    path: "/v1/batches",
    method: "POST",
    headers,
    body: JSON.stringify({ model: "iris", items }),
  });
  let view = (await created.body.json()) as { id: string; status: string; counts?: { succeeded: number } };
  while (view.status !== "completed" && view.status !== "canceled") {
    view = (await (
      await client.request({ path: `/v1/batches/${view.id}?wait=30`, method: "GET", headers })
    ).body.json()) as typeof view;
  }
  const seconds = (performance.now() - t0) / 1000;
  const { rows } = await p.query<{ n: number }>(
    `select count(*)::int as n from batch_chunks c, unnest(c.cached) as x(hit) where c."batchId" = $1 and x.hit`,
    [view.id],
  );
  return { seconds: round(seconds, 3), itemsPerSecond: round(batchItems / seconds, 0), cached: rows[0]!.n };
}
const stored1 = await workerCacheWrites();
const batchMiss = await batchRun(0);
while ((await workerCacheWrites()) - stored1 < batchItems && Date.now() < deadline + 60_000)
  await new Promise((r) => setTimeout(r, 100));
const batchHit = await batchRun(0);
log(
  `batch of ${batchItems}: never scored ${batchMiss.itemsPerSecond} items/s (${batchMiss.seconds} s); again ${batchHit.itemsPerSecond} items/s (${batchHit.seconds} s, ${batchHit.cached} cached)`,
);

await client.close();
await Promise.all([stopApp(api), stopApp(worker)]);
admin.disconnect();
await resetJobs(p);
await p.end();
const ratio = (a: number, b: number) => (b ? round(a / b, 3) : NaN);
emit({
  scenario: "cache",
  model: env.model,
  n: N,
  concurrency,
  jobsPerSecond: hit.jobsPerSecond,
  hit,
  miss,
  bypass,
  batch: { items: batchItems, miss: batchMiss, hit: batchHit },
  cacheHitOverMissJobsPerSecond: ratio(hit.jobsPerSecond, miss.jobsPerSecond),
  cacheHitP50OverMiss: ratio(hit.p50, miss.p50),
  cacheHitP99OverMiss: ratio(hit.p99, miss.p99),
  cacheBatchHitOverMissItemsPerSecond: ratio(batchHit.itemsPerSecond, batchMiss.itemsPerSecond),
  usage: hit.usage,
});
