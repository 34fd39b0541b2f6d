/**
 * A BullMQ Worker with a no-op processor, in a process of its own (as Inferline's worker runs):
 * the far side of bench/scenarios/queue-latency.ts. Settings from the environment:
 * BENCH_QL_PREFIX, BENCH_QL_QUEUE, BENCH_QL_CONCURRENCY, BENCH_REDIS_URL. Prints "ready" once it
 * takes work; SIGTERM closes it.
 */
import { Worker } from "bullmq";
import { Redis } from "ioredis";

const connection = new Redis(process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: null });
const worker = new Worker(process.env.BENCH_QL_QUEUE ?? "infer-bench", async () => {}, {
  connection,
  prefix: process.env.BENCH_QL_PREFIX,
  concurrency: Number(process.env.BENCH_QL_CONCURRENCY ?? 8),
  // Inferline's worker settings (QUEUE_LOCK_MS default), so lock bookkeeping costs the same.
  lockDuration: 30_000,
  stalledInterval: 30_000,
});
worker.on("error", (err) => process.stderr.write(`noop worker: ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  void worker.close().then(() => process.exit(0));
});
