import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { WorkerSupervisor } from "./support/processes.ts";

// The `poison` model kills its whole worker process (SIGKILL, on the main thread) for index 2 and
// answers like `lookup` otherwise. Workers run as real child processes that a supervisor starts
// again after each death, as a process manager would.
const ATTEMPTS = 3;
const POISON = 2;

let stack: TestStack;
let db: Database;
let supervisor: WorkerSupervisor | undefined;
beforeAll(async () => {
  stack = await startStack({ worker: false, faultModels: true });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await supervisor?.stop();
  await db?.close();
  await stack?.close();
});

const job = (index: number) => ({
  model: "poison",
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
});

function startWorkers(): WorkerSupervisor {
  return new WorkerSupervisor({
    ...stack.workerEnv,
    WORKER_MODELS: "poison",
    INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
    JOB_ATTEMPTS: String(ATTEMPTS),
    // A dead worker's entries go back to the queue after about two of these.
    QUEUE_LOCK_MS: "1000",
    WEBHOOK_CONCURRENCY: "0",
    LOG_LEVEL: "warn",
  }).start();
}

describe("a job that kills every worker that runs it", () => {
  it("fails alone with retries_exhausted after JOB_ATTEMPTS; the jobs of its entry and its batch chunk succeed", async () => {
    // Submitted while no worker runs, concurrently, so that the group commit puts them on shared
    // entries; a try whose poison job got an entry to itself is canceled and made again.
    const indexes = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, POISON];
    let jobs: Array<{ id: string }> = [];
    for (let tries = 0; tries < 5; tries++) {
      jobs = await Promise.all(indexes.map(async (i) => (await stack.alpha.post("/v1/jobs", job(i))).body));
      const shared = await db.pool.query(
        `select count(*)::int as n from jobs where "dispatchId" = (select "dispatchId" from jobs where id = $1)`,
        [jobs[jobs.length - 1]!.id],
      );
      if (shared.rows[0].n > 1) break;
      await Promise.all(jobs.map((j) => stack.alpha.post(`/v1/jobs/${j.id}/cancel`)));
      jobs = [];
    }
    expect(jobs.length, "the poison job never shared its queue entry with others").toBe(indexes.length);
    const items = [0, 1, POISON, 0, 1, 0].map((i, k) => ({ customId: `item-${k}`, inputs: job(i).inputs }));
    const batch = (await stack.alpha.post("/v1/batches", { model: "poison", items })).body;

    supervisor = startWorkers();
    const terminal = async () => {
      const { rows } = await db.pool.query(
        `select count(*)::int as n from jobs where status in ('succeeded', 'failed') and id = any($1::uuid[])`,
        [jobs.map((j) => j.id)],
      );
      const b = (await stack.alpha.get(`/v1/batches/${batch.id}`)).body;
      return rows[0].n === jobs.length && b.status === "completed";
    };
    await sleepUntil(terminal, {
      timeoutMs: 120_000,
      intervalMs: 200,
      message: "the jobs and the batch never all ended",
    }).catch(async (err: Error) => {
      const state = await db.pool.query(`select status, attempts, "dispatchId" from jobs where id = any($1::uuid[])`, [
        jobs.map((j) => j.id),
      ]);
      const chunks = await db.pool.query(`select statuses, attempts, "startedAt", "completedAt" from batch_chunks`);
      const dispatches = await db.pool.query(`select id, jobs, "batchChunk", "createdAt" from dispatches`);
      throw new Error(
        `${err.message}\njobs ${JSON.stringify(state.rows)}\nchunks ${JSON.stringify(chunks.rows)}\ndispatches ${JSON.stringify(dispatches.rows)}\ndeaths ${supervisor!.deaths}\n${supervisor!.output().slice(-3000)}`,
      );
    });

    const done = await Promise.all(jobs.map(async (j) => (await stack.alpha.get(`/v1/jobs/${j.id}`)).body));
    const poison = done[done.length - 1]!;
    expect(poison.status).toBe("failed");
    expect(poison.error.code).toBe("retries_exhausted");
    expect(poison.attempts).toBeLessThanOrEqual(ATTEMPTS + 1);
    done.slice(0, -1).forEach((j, k) => {
      expect(j.status).toBe("succeeded");
      expect(j.result.outputs[0].data).toEqual(LOOKUP_TABLE[indexes[k]!]);
    });

    const lines = (await stack.alpha.get(`/v1/batches/${batch.id}/results`)).text
      .trim()
      .split("\n")
      .map((l: string) => JSON.parse(l));
    expect(lines.map((l) => l.status)).toEqual([
      "succeeded",
      "succeeded",
      "failed",
      "succeeded",
      "succeeded",
      "succeeded",
    ]);
    expect(lines[2].error.code).toBe("retries_exhausted");
    expect(lines[3].result.outputs[0].data).toEqual(LOOKUP_TABLE[0]);
    // The workers did die for it, and nothing is left for them to pick up and die of again. The
    // entries of the canceled tries (and of the suspects' isolation) may still be in the queue
    // while these jobs end, each row going once a worker finds its jobs ended: wait for that.
    expect(supervisor.deaths).toBeGreaterThanOrEqual(ATTEMPTS);
    const leftEntries = async () =>
      (
        await db.pool.query(
          `select d.id, d.jobs, d."batchChunk", array(select status::text from jobs where id = any(d."jobIds")) as statuses from dispatches d`,
        )
      ).rows;
    await sleepUntil(async () => (await leftEntries()).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
      message: "dispatch rows were left",
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await leftEntries())}`);
    });
  }, 200_000);
});
