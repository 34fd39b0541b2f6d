/**
 * submit: HTTP clients submitting single jobs (POST /v1/jobs) to the real API at a fixed
 * concurrency, no worker running; accepted (202) jobs per second.
 *
 * The load generator shares the machine's 2 cores with the API, PostgreSQL and Redis. Two
 * placements (BENCH_SUBMIT_MODE):
 *  - "child" (default): the API runs as its own process (apps/api/src/main.ts, as deployed); this
 *    process is only the client.
 *  - "inproc": the API (startApi) and the client share this process and its event loop.
 * The client is undici's Pool (keep-alive, one connection per concurrent request), its cheapest
 * request path. A warm-up of BENCH_SUBMIT_WARMUP requests precedes the measured N.
 */
import { Redis } from "ioredis";
import pino from "pino";
import { Pool } from "undici";
import { loadApiEnv, startApi } from "@inferline/api";
import {
  emit,
  env,
  freePort,
  inputMaker,
  int,
  log,
  meter,
  pool,
  prefixFor,
  resetJobs,
  round,
  spawnApp,
  stopApp,
  submitLoop,
  waitHttp,
} from "./_shared.ts";

const N = env.n;
const concurrency = int("BENCH_SUBMIT_CONCURRENCY", 64);
const warmup = int("BENCH_SUBMIT_WARMUP", 2000);
const mode = process.env.BENCH_SUBMIT_MODE ?? "child";
const prefix = prefixFor("submit");
const p = pool(2);
await resetJobs(p);
const admin = new Redis(env.redisUrl);

const vars = {
  DATABASE_URL: env.databaseUrl,
  REDIS_URL: env.redisUrl,
  QUEUE_PREFIX: prefix,
  LOG_LEVEL: "warn",
  RATE_LIMIT_PER_SECOND: "0",
  HOST: "127.0.0.1",
};
let url: string;
let stop: () => Promise<void>;
if (mode === "inproc") {
  const api = await startApi(loadApiEnv({ ...vars, PORT: "0" }), pino({ level: "warn" }));
  url = api.url;
  stop = () => api.close();
} else {
  const port = await freePort();
  const child = spawnApp("api", { ...vars, PORT: String(port) });
  url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/healthz`);
  stop = () => stopApp(child);
}

const make = await inputMaker();
// cache: "bypass": these figures measure runs, comparable with runs before the result cache (the cache scenario measures hits).
const bodies = Array.from({ length: 150 }, (_, i) =>
  JSON.stringify({ model: env.model, inputs: make(i), cache: "bypass" }),
);
const client = new Pool(url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
const headers = { authorization: `Bearer ${env.apiKey}`, "content-type": "application/json" };
const statuses = new Map<number, number>();

const run = (count: number) => submitLoop({ client, headers, bodies, concurrency, statuses }, count);

if (!env.apiKey) throw new Error("BENCH_API_KEY is not set (bench/run.ts creates one)");
await run(warmup);
log(`warm-up ${warmup}: ${JSON.stringify(Object.fromEntries(statuses))}`);
statuses.clear();
const m = await meter(p, admin);
await run(N);
const usage = await m.stop(N);
const accepted = statuses.get(202) ?? 0;
const jobsPerSecond = round(accepted / usage.seconds, 0);
log(
  `${N} requests (${mode}, concurrency ${concurrency}) in ${usage.seconds} s: ${jobsPerSecond} accepted/s; ${JSON.stringify(Object.fromEntries(statuses))}`,
);
await client.close();
await stop();
const { rows } = await p.query<{ n: number }>(`select count(*)::int as n from jobs`);
admin.disconnect();
await resetJobs(p);
await p.end();
emit({
  scenario: "submit",
  model: env.model,
  n: N,
  jobsPerSecond,
  mode,
  concurrency,
  statuses: Object.fromEntries(statuses),
  rowsStored: rows[0]!.n,
  usage,
});
