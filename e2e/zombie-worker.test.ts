import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { createRedis } from "@inferline/queue";
import { WebhookQueue } from "@inferline/webhooks";
import { exitOf, runProcess, WORKER_MAIN, type RunningProcess } from "./support/processes.ts";

// A worker frozen (SIGSTOP) in the middle of a job, past its lock: another worker takes the job
// over and finishes it; when the frozen one wakes (SIGCONT) and writes its late result, nothing
// changes and no second webhook event is recorded or sent.
let stack: TestStack;
let db: Database;
let zombie: RunningProcess | undefined;
const received: Array<{ id: string; body: string }> = [];
const receiver = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ id: String(req.headers["webhook-id"]), body });
    res.writeHead(200).end();
  });
});

const LOCK_MS = "1000";
const workerEnv = () => ({
  WORKER_MODELS: "slow",
  INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
  QUEUE_LOCK_MS: LOCK_MS,
  WEBHOOK_ALLOW_PRIVATE: "true",
});

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  stack = await startStack({ worker: false, faultModels: true, api: { WEBHOOK_ALLOW_PRIVATE: "true" } });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  if (zombie && zombie.child.exitCode === null) {
    zombie.child.kill("SIGCONT");
    zombie.child.kill("SIGKILL");
    await exitOf(zombie.child);
  }
  await db?.close();
  await stack?.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

describe("a zombie worker", () => {
  it("wakes after another worker finished its job: its late write changes nothing and sends nothing", async () => {
    // The zombie delivers no webhooks, so every delivery comes from the live worker.
    zombie = runProcess(WORKER_MAIN, {
      ...stack.workerEnv,
      ...workerEnv(),
      WEBHOOK_CONCURRENCY: "0",
      LOG_LEVEL: "debug",
    });
    await sleepUntil(() => zombie!.output().includes("worker ready"), {
      timeoutMs: 30_000,
      message: "the first worker never started",
    });
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const job = (
      await stack.alpha.post("/v1/jobs", {
        model: "slow",
        inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [2] }],
        webhook: { url },
      })
    ).body;
    // The `slow` model takes about 1.5 s for index 2; freeze the worker once it has claimed the job.
    await sleepUntil(
      async () =>
        (await db.pool.query(`select 1 from jobs where id = $1 and status = 'running'`, [job.id])).rowCount === 1,
      { intervalMs: 5, message: "the job never started" },
    );
    zombie.child.kill("SIGSTOP");

    await stack.startWorker(workerEnv());
    const done = await sleepUntil(
      async () => {
        const j = (await stack.alpha.get(`/v1/jobs/${job.id}?wait=5`)).body;
        return j.status === "succeeded" ? j : undefined;
      },
      { timeoutMs: 30_000, message: "the live worker never finished the job" },
    );
    expect(done.attempts).toBe(2);
    expect(done.result.outputs[0].data).toEqual(LOOKUP_TABLE[2]);
    await sleepUntil(() => received.length === 1, { message: "the webhook never arrived" });
    const before = (
      await db.pool.query(`select status, result::text, "completedAt", attempts from jobs where id = $1`, [job.id])
    ).rows[0];

    // Wake the zombie: it finishes its run, writes its result (refused: the job is terminal), and
    // BullMQ then refuses to complete an entry it no longer holds (logged).
    const logged = zombie.output().length;
    zombie.child.kill("SIGCONT");
    await sleepUntil(() => /missing lock|moveToFinished|moveToCompleted/i.test(zombie!.output().slice(logged)), {
      timeoutMs: 20_000,
      message: "the zombie never reported its lost entry",
    });

    const after = (
      await db.pool.query(`select status, result::text, "completedAt", attempts from jobs where id = $1`, [job.id])
    ).rows[0];
    expect(after).toEqual(before);
    const events = await db.pool.query(`select id from webhook_events where "jobId" = $1`, [job.id]);
    expect(events.rowCount).toBe(1);
    // The webhook queue is drained: no second delivery is pending anywhere.
    const redis = createRedis(stack.workerEnv.REDIS_URL!);
    const queue = new WebhookQueue(redis, stack.prefix);
    try {
      const pending = async () =>
        Object.values(await queue.queue.getJobCounts("wait", "active", "delayed", "prioritized")).reduce(
          (a, b) => a + b,
          0,
        );
      await sleepUntil(async () => (await pending()) === 0, { message: "a webhook delivery is still pending" });
    } finally {
      await queue.close();
      redis.disconnect();
    }
    expect(received).toHaveLength(1);
    expect(received[0]!.id).toBe(events.rows[0].id);
  }, 90_000);
});
