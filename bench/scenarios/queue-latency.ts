/**
 * queue-latency: the floor of any system built on BullMQ. This process adds single entries
 * (`Queue.add`, Inferline's entry options and payload shape) at the latency scenario's paced rate
 * (BENCH_LATENCY_RATE, BENCH_LATENCY_SECONDS, BENCH_LATENCY_WARMUP_S, the same defaults) and
 * times each from the add to its `completed` event seen through `QueueEvents`; a no-op Worker runs
 * in a process of its own (bench/support/noop-worker.ts, concurrency BENCH_WORKER_CONCURRENCY as
 * the latency scenario's worker). `BENCH_QL_PRIORITY=1` gives entries a priority rank as
 * Inferline's fair share does (BullMQ's prioritized set); default off, the plain list is the floor.
 */
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import path from "node:path";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import {
  childPids,
  emit,
  env,
  int,
  latencySummary,
  log,
  meter,
  pool,
  prefixFor,
  quantile,
  ROOT,
  round,
  sleep,
  stopApp,
} from "./_shared.ts";

const rate = int("BENCH_LATENCY_RATE", env.model === "iris" ? 100 : 20);
const seconds = int("BENCH_LATENCY_SECONDS", 10);
const warmupSeconds = int("BENCH_LATENCY_WARMUP_S", 2);
const concurrency = int("BENCH_WORKER_CONCURRENCY", 8);
const priority = process.env.BENCH_QL_PRIORITY === "1";
const prefix = prefixFor("queue-latency");
const name = "infer-bench";
const connection = new Redis(env.redisUrl, { maxRetriesPerRequest: null });
const admin = new Redis(env.redisUrl);
const p = pool(1);
const queue = new Queue(name, { connection, prefix });
const events = new QueueEvents(name, { connection: new Redis(env.redisUrl, { maxRetriesPerRequest: null }), prefix });
await events.waitUntilReady();

const flags = (process.env.BENCH_CHILD_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const worker = spawn(process.execPath, [...flags, "--import", "tsx", path.join(ROOT, "bench/support/noop-worker.ts")], {
  cwd: ROOT,
  env: {
    ...process.env,
    BENCH_QL_PREFIX: prefix,
    BENCH_QL_QUEUE: name,
    BENCH_QL_CONCURRENCY: String(concurrency),
    BENCH_REDIS_URL: env.redisUrl,
  },
  stdio: ["ignore", "pipe", "inherit"],
});
childPids.set(worker.pid!, "worker");
await new Promise<void>((resolve, reject) => {
  worker.stdout.setEncoding("utf8").on("data", (text: string) => text.includes("ready") && resolve());
  worker.once("exit", (code) => reject(new Error(`the no-op worker exited (${code})`)));
});

/** Completions we wait for, by entry id (registered before the add: an event may beat the add's reply). */
const waiting = new Map<string, () => void>();
events.on("completed", ({ jobId }) => {
  const done = waiting.get(jobId);
  if (!done) return;
  waiting.delete(jobId);
  done();
});

interface Sample {
  total: number;
  add: number;
  ok: boolean;
}

async function one(): Promise<Sample> {
  const id = crypto.randomUUID();
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const completed = new Promise<boolean>((resolve) => {
    waiting.set(id, () => resolve(true));
    // The latency scenario's long-poll waits 10 s: an entry not completed by then counts as lost here too.
    timer = setTimeout(() => resolve(false), 10_000);
  });
  await queue.add(
    "infer",
    { jobIds: [crypto.randomUUID()], version: "1" },
    {
      attempts: 5,
      backoff: { type: "exponential", delay: 1000, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600 },
      jobId: id,
      ...(priority ? { priority: 2 } : {}),
    },
  );
  const t1 = performance.now();
  const ok = await completed;
  clearTimeout(timer);
  waiting.delete(id);
  return { total: performance.now() - t0, add: t1 - t0, ok };
}

async function paced(count: number): Promise<Sample[]> {
  const start = performance.now();
  const running: Promise<Sample>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    running.push(one());
  }
  return Promise.all(running);
}

await paced(rate * warmupSeconds);
const count = rate * seconds;
const m = await meter(p, admin);
const samples = await paced(count);
const usage = await m.stop(count);
const totals = samples
  .filter((s) => s.ok)
  .map((s) => s.total)
  .sort((a, b) => a - b);
const adds = samples.map((s) => s.add).sort((a, b) => a - b);
const ms = (x: number) => round(x, 2);
const result = {
  ...latencySummary(totals, 2),
  addP50: ms(quantile(adds, 0.5)),
  addP99: ms(quantile(adds, 0.99)),
};
const statuses = { completed: totals.length, lost: samples.length - totals.length };
log(
  `${count} entries at ${rate}/s: add → completed p50 ${result.p50} ms, p90 ${result.p90} ms, p99 ${result.p99} ms (add alone p50 ${result.addP50} ms); ${JSON.stringify(statuses)}`,
);
await stopApp(worker);
await events.close();
await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
connection.disconnect();
admin.disconnect();
await p.end();
emit({
  scenario: "queue-latency",
  model: env.model,
  n: count,
  rate,
  seconds,
  concurrency,
  prioritized: priority,
  ...result,
  statuses,
  achievedRate: round(count / usage.seconds, 1),
  usage,
});
