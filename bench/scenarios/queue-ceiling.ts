/**
 * queue-ceiling: the transport's limit. N single-job BullMQ entries are added with addBulk (the
 * payload shape of a real entry, one job id), then one BullMQ Worker with a no-op processor
 * drains them. Entry options are Inferline's (Dispatcher: attempts 5, exponential backoff,
 * removeOnComplete); `BENCH_QC_PRIORITY=1` also gives them the normal-priority rank Inferline
 * uses (BullMQ's prioritized set, slower), default off: the plain FIFO list is the ceiling.
 */
import crypto from "node:crypto";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { emit, env, int, log, meter, pool, prefixFor, round } from "./_shared.ts";

const N = env.n;
const concurrency = int("BENCH_QC_CONCURRENCY", 64);
const priority = process.env.BENCH_QC_PRIORITY === "1";
const prefix = prefixFor("queue-ceiling");
const connection = new Redis(env.redisUrl, { maxRetriesPerRequest: null });
const admin = new Redis(env.redisUrl);
const p = pool(1);
const queue = new Queue("infer-bench", { connection, prefix });

const t = performance.now();
for (let i = 0; i < N; i += 5000) {
  await queue.addBulk(
    Array.from({ length: Math.min(5000, N - i) }, () => ({
      name: "infer",
      data: { jobIds: [crypto.randomUUID()], version: "1" },
      opts: {
        attempts: 5,
        backoff: { type: "exponential", delay: 1000, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: { age: 7 * 24 * 3600 },
        jobId: crypto.randomUUID(),
        ...(priority ? { priority: 2 } : {}),
      },
    })),
  );
}
const addBulkPerSecond = round(N / ((performance.now() - t) / 1000), 0);
log(`addBulk: ${addBulkPerSecond} entries/s`);

let done = 0;
let finish: (at: number) => void = () => {};
const finished = new Promise<number>((r) => (finish = r));
const m = await meter(p, admin);
const worker = new Worker(
  "infer-bench",
  async () => {
    if (++done === N) queueMicrotask(() => finish(performance.now()));
  },
  {
    connection: new Redis(env.redisUrl, { maxRetriesPerRequest: null }),
    prefix,
    concurrency,
    lockDuration: 30_000,
    maxStalledCount: 3,
  },
);
worker.on("error", () => {});
const endedAt = await finished;
// "completed" of the last entries is acknowledged after the processor returns; wait until the queue agrees.
for (let i = 0; i < 100 && ((await queue.getJobCounts("active")).active ?? 0) > 0; i++)
  await new Promise((r) => setTimeout(r, 20));
const usage = await m.stop(N, endedAt);
const jobsPerSecond = round(N / usage.seconds, 0);
log(
  `drained ${N} entries in ${usage.seconds} s = ${jobsPerSecond} entries/s (concurrency ${concurrency}${priority ? ", prioritized" : ""})`,
);
await worker.close();
await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
connection.disconnect();
admin.disconnect();
await p.end();
emit({
  scenario: "queue-ceiling",
  model: env.model,
  n: N,
  jobsPerSecond,
  addBulkPerSecond,
  concurrency,
  prioritized: priority,
  usage,
});
