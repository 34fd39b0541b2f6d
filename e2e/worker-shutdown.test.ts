import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchItemId } from "@inferline/contracts";
import { Database } from "@inferline/db";
import { FIXTURE_ADAPTERS_MODULE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// A worker whose in-flight work outlasts SHUTDOWN_TIMEOUT_MS hands it back: the claims are
// released without counting an attempt, even on an entry's last attempt (JOB_ATTEMPTS=1), and
// another worker runs the work. Index 2 takes the `slow` model about 1.5 s.
const SLOW = { WORKER_MODELS: "slow", INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE, JOB_ATTEMPTS: "1" };
const slowInput = [{ name: "index", datatype: "INT64", shape: [1, 1], data: [2] }];

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({ worker: false, faultModels: true });
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

async function jobWhen(id: string, done: (job: Record<string, any>) => boolean): Promise<Record<string, any>> {
  return sleepUntil(
    async () => {
      const job = (await stack.alpha.get(`/v1/jobs/${id}`)).body;
      return done(job) ? job : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 20, message: `job ${id} never reached the state waited for` },
  );
}

describe("a worker's shutdown timeout", () => {
  it("hands in-flight jobs and batch chunks back on their last attempt: released, no attempt counted, run by the next worker", async () => {
    await stack.startWorker({ ...SLOW, SHUTDOWN_TIMEOUT_MS: "200" });
    const job = await stack.alpha.post("/v1/jobs", { model: "slow", inputs: slowInput });
    const batch = await stack.alpha.post("/v1/batches", { model: "slow", items: [{ inputs: slowInput }] });
    expect([job.status, batch.status]).toEqual([202, 202]);
    const itemId = batchItemId(batch.body.id, 0);
    await jobWhen(job.body.id, (j) => j.status === "running");
    await jobWhen(itemId, (j) => j.status === "running");

    // Both runs take longer than the timeout.
    await stack.stopWorker();
    const handedBack = (await stack.alpha.get(`/v1/jobs/${job.body.id}`)).body;
    expect(handedBack).toMatchObject({ status: "queued", attempts: 0 });
    expect(handedBack.error).toBeUndefined();
    expect(handedBack.startedAt).toBeUndefined();
    expect((await stack.alpha.get(`/v1/jobs/${itemId}`)).body).toMatchObject({ status: "queued", attempts: 0 });
    const { rows } = await db.pool.query<{ started: number }>(
      `select count(*) filter (where "startedAt" is not null)::int as started from dispatches`,
    );
    expect(rows[0]!.started).toBe(0);

    await stack.startWorker(SLOW);
    try {
      expect(await jobWhen(job.body.id, (j) => j.status !== "queued" && j.status !== "running")).toMatchObject({
        status: "succeeded",
        attempts: 1,
      });
      expect(await jobWhen(itemId, (j) => j.status !== "queued" && j.status !== "running")).toMatchObject({
        status: "succeeded",
        attempts: 1,
      });
    } finally {
      await stack.stopWorker();
    }
  }, 60_000);
});
