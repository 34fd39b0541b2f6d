/**
 * Webhook latency on loopback: time from a job's `completedAt` (written by the worker in the same
 * statement that finishes it) to the moment a local receiver has the signed POST for it.
 *
 *   node_modules/.bin/tsx bench/webhook-latency.ts            # 1,000 iris jobs
 *   JOBS=5000 CONCURRENCY=50 WEBHOOK_CONCURRENCY=32 node_modules/.bin/tsx bench/webhook-latency.ts
 *
 * Runs the API and a worker in this process (as the test stack does) on a database of its own,
 * `inferline_bench_webhooks` (recreated each run), and a queue prefix of its own; prints the
 * figures and writes them to bench/webhook-latency.json.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from "@inferline/contracts";
import { Database, migrate, TenantStore } from "@inferline/db";
import { createRedis } from "@inferline/queue";
import { loadApiEnv, startApi } from "@inferline/api";
import { createLogger, loadWorkerEnv, startWorker } from "@inferline/worker";

const JOBS = Number(process.env.JOBS ?? 1000);
/** Submits in flight. 10 keeps this 2-core machine below saturation (API, worker, receiver,
 * PostgreSQL and Redis all share it); at 50 the single process saturates and the figure measures
 * the delivery backlog rather than the pipeline. */
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 10);
const base = new URL(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
const databaseUrl = Object.assign(new URL(base), { pathname: "/inferline_bench_webhooks" }).toString();
const prefix = `bench-wh-${crypto.randomBytes(4).toString("hex")}`;

async function recreateDatabase(): Promise<void> {
  const admin = new Database(Object.assign(new URL(base), { pathname: "/postgres" }).toString(), { poolSize: 1 });
  await admin.pool.query(`drop database if exists inferline_bench_webhooks with (force)`);
  await admin.close();
  await migrate(databaseUrl);
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

async function main(): Promise<void> {
  const loadAtStart = Number(os.loadavg()[0]!.toFixed(2));
  await recreateDatabase();
  const logger = createLogger(process.env.BENCH_LOG_LEVEL ?? "silent", false, "bench");
  const shared = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, LOG_LEVEL: "silent" };
  const api = await startApi(
    loadApiEnv({ ...shared, PORT: "0", HOST: "127.0.0.1", WEBHOOK_ALLOW_PRIVATE: "true", RATE_LIMIT_PER_SECOND: "0" }),
    logger,
  );
  const worker = await startWorker(
    loadWorkerEnv({
      ...shared,
      WORKER_MODELS: "iris",
      METRICS_PORT: "0",
      RECONCILE_INTERVAL_MS: "0",
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_CONCURRENCY: process.env.WEBHOOK_CONCURRENCY ?? "16",
    }),
    logger,
  );
  const admin = new Database(databaseUrl, { poolSize: 1 });
  const { key } = await new TenantStore(admin.pool, admin.prisma).createKey("bench");
  const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };

  // The receiver: notes when each job's event arrived (signatures are the tests' business).
  const latencies = new Map<string, number>();
  let duplicates = 0;
  let allReceived: () => void = () => {};
  const done = new Promise<void>((resolve) => (allReceived = resolve));
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const receivedAt = Date.now();
      const body = Buffer.concat(chunks).toString("utf8");
      res.writeHead(204).end();
      const { data } = JSON.parse(body) as { data: { id: string; completedAt: string } };
      if (latencies.has(data.id)) duplicates++;
      latencies.set(data.id, receivedAt - Date.parse(data.completedAt));
      if (latencies.size >= JOBS) allReceived();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const started = Date.now();
  let next = 0;
  const body = JSON.stringify({
    model: "iris",
    inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
    webhook: { url: webhookUrl },
  });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) {
        next++;
        const res = await fetch(`${api.url}/v1/jobs`, { method: "POST", headers: auth, body });
        if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  const submitted = Date.now();
  const timeout = setTimeout(() => allReceived(), 120_000);
  await done;
  clearTimeout(timeout);
  const finished = Date.now();

  const sorted = [...latencies.values()].sort((a, b) => a - b);
  const result = {
    at: new Date().toISOString(),
    command: "node_modules/.bin/tsx bench/webhook-latency.ts",
    jobs: JOBS,
    submitConcurrency: CONCURRENCY,
    received: latencies.size,
    duplicates,
    webhookConcurrency: Number(process.env.WEBHOOK_CONCURRENCY ?? 16),
    latencyMs: sorted.length
      ? {
          min: sorted[0],
          median: quantile(sorted, 0.5),
          p90: quantile(sorted, 0.9),
          p99: quantile(sorted, 0.99),
          max: sorted[sorted.length - 1],
        }
      : null,
    submitSeconds: (submitted - started) / 1000,
    totalSeconds: (finished - started) / 1000,
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      node: process.version,
      loadAverage1mAtStart: loadAtStart,
    },
    note: "latency = receipt time at a loopback receiver minus the job's completedAt (PostgreSQL now() of the finishing statement); API, worker and receiver share one process",
  };
  fs.writeFileSync(new URL("./webhook-latency.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `webhook latency over ${result.received}/${JOBS} jobs: median ${result.latencyMs?.median} ms, p99 ${result.latencyMs?.p99} ms (min ${result.latencyMs?.min}, p90 ${result.latencyMs?.p90}, max ${result.latencyMs?.max}); ${duplicates} duplicates; ${result.totalSeconds} s in all`,
  );

  receiver.closeAllConnections();
  receiver.close();
  await worker.close();
  await api.close();
  await admin.close();
  const redis = createRedis(redisUrl);
  let cursor = "0";
  do {
    const [nextCursor, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = nextCursor;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  if (result.received < JOBS) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
