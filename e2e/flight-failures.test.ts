import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { exitOf, runProcess, WORKER_MAIN, type RunningProcess } from "./support/processes.ts";

// The followers of a single flight never ran: when their leader fails for a reason that is not
// its input's (here retries_exhausted: the worker running it froze past its lock, and with
// JOB_ATTEMPTS 1 the worker that took the entry over gives up on it), they run on their own and
// succeed, as they do when their leader is canceled. The `slow` model (index 2 takes about 1.5 s)
// gets a result cache here, so that identical jobs share a flight.

let stack: TestStack;
let db: Database;
let zombie: RunningProcess | undefined;

const workerEnv = {
  WORKER_MODELS: "slow",
  INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
  QUEUE_LOCK_MS: "1000",
  JOB_ATTEMPTS: "1",
};

beforeAll(async () => {
  const withCache = (dir: string) => {
    const file = path.join(dir, "slow", "model.json");
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), cache: { ttlSeconds: 60 } }));
  };
  stack = await startStack({ worker: false, faultModels: true, editModels: withCache });
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
});

const slow = { model: "slow", inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [2] }] };

async function ended(id: string) {
  return sleepUntil(
    async () => {
      const job = (await stack.alpha.get(`/v1/jobs/${id}?wait=5`)).body;
      return ["succeeded", "failed", "canceled", "expired"].includes(job.status) ? job : undefined;
    },
    { timeoutMs: 30_000, message: `job ${id} never ended` },
  );
}

describe("followers of a leader that failed for want of a working worker", () => {
  it("run on their own and succeed when the leader fails with retries_exhausted", async () => {
    zombie = runProcess(WORKER_MAIN, { ...stack.workerEnv, ...workerEnv, WEBHOOK_CONCURRENCY: "0", LOG_LEVEL: "info" });
    await sleepUntil(() => zombie!.output().includes("worker ready"), {
      timeoutMs: 30_000,
      message: "the first worker never started",
    });
    const leader = (await stack.alpha.post("/v1/jobs", slow)).body;
    await sleepUntil(
      async () =>
        (await db.pool.query(`select 1 from jobs where id = $1 and status = 'running'`, [leader.id])).rowCount === 1,
      {
        intervalMs: 5,
        message: "the leader never started",
      },
    );
    zombie.child.kill("SIGSTOP");

    const followers = await Promise.all([1, 2].map(async () => (await stack.alpha.post("/v1/jobs", slow)).body));
    const { rows } = await db.pool.query(`select "cacheLeader" from jobs where id = any($1::uuid[])`, [
      followers.map((f) => f.id),
    ]);
    expect(rows.map((r) => r.cacheLeader)).toEqual([leader.id, leader.id]);

    // Takes the frozen worker's entry once its lock lapses: the leader's second claim is past JOB_ATTEMPTS.
    await stack.startWorker(workerEnv);
    expect(await ended(leader.id)).toMatchObject({ status: "failed", error: { code: "retries_exhausted" } });
    for (const f of followers) {
      const job = await ended(f.id);
      expect(job, JSON.stringify(job.error)).toMatchObject({
        status: "succeeded",
        attempts: 1,
        result: { outputs: [{ data: LOOKUP_TABLE[2] }] },
      });
      expect(job.cached).toBeUndefined();
    }
  }, 90_000);
});
