/**
 * express-ceiling: the same client, bodies and concurrency as the submit scenario
 * (BENCH_SUBMIT_CONCURRENCY, BENCH_SUBMIT_WARMUP, N requests) against a minimal Express 5 app in
 * its own process (bench/support/express-ceiling-app.ts: express.json(), one POST route answering
 * 202 with a job-sized body). Requests per second, and the app's CPU per request beside the client's
 * (bench/run.ts puts it beside the submit scenario's API CPU per job).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { Redis } from "ioredis";
import { Pool } from "undici";
import {
  childPids,
  emit,
  env,
  freePort,
  inputMaker,
  int,
  log,
  meter,
  pool,
  ROOT,
  round,
  stopApp,
  submitLoop,
} from "./_shared.ts";

const N = env.n;
const concurrency = int("BENCH_SUBMIT_CONCURRENCY", 64);
const warmup = int("BENCH_SUBMIT_WARMUP", 2000);
const lean = process.env.BENCH_EXPRESS_LEAN === "1";
const p = pool(1);
const admin = new Redis(env.redisUrl);

const port = await freePort();
const flags = (process.env.BENCH_CHILD_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const app = spawn(
  process.execPath,
  [...flags, "--import", "tsx", path.join(ROOT, "bench/support/express-ceiling-app.ts")],
  {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  },
);
childPids.set(app.pid!, "express");
await new Promise<void>((resolve, reject) => {
  app.stdout.setEncoding("utf8").on("data", (text: string) => text.includes("ready") && resolve());
  app.once("exit", (code) => reject(new Error(`the Express app exited (${code})`)));
});

const make = await inputMaker();
// The same bodies as submit sends (cache: "bypass" included), byte for byte.
const bodies = Array.from({ length: 150 }, (_, i) =>
  JSON.stringify({ model: env.model, inputs: make(i), cache: "bypass" }),
);
const client = new Pool(`http://127.0.0.1:${port}`, {
  connections: concurrency,
  pipelining: 1,
  keepAliveTimeout: 60_000,
});
const headers = { authorization: `Bearer ${env.apiKey || "bench"}`, "content-type": "application/json" };
const statuses = new Map<number, number>();

const run = (count: number) => submitLoop({ client, headers, bodies, concurrency, statuses }, count);

await run(warmup);
statuses.clear();
const m = await meter(p, admin);
await run(N);
const usage = await m.stop(N);
const accepted = statuses.get(202) ?? 0;
const jobsPerSecond = round(accepted / usage.seconds, 0);
log(
  `${N} requests (concurrency ${concurrency}${lean ? ", lean" : ""}) in ${usage.seconds} s: ${jobsPerSecond} answered 202/s, ${String((usage.perJob as Record<string, unknown>).expressCpuUs)} µs of the app's CPU per request; ${JSON.stringify(Object.fromEntries(statuses))}`,
);
await client.close();
await stopApp(app);
admin.disconnect();
await p.end();
emit({
  scenario: "express-ceiling",
  model: env.model,
  n: N,
  jobsPerSecond,
  concurrency,
  lean,
  statuses: Object.fromEntries(statuses),
  usage,
});
