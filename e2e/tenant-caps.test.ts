import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantCapStore } from "@inferline/db";
import { ApiClient, FIXTURE_ADAPTERS_MODULE, sleepUntil } from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";
import { startStack, testLogger, type TestStack } from "./support/stack.ts";
import { loadApiEnv, startApi } from "@inferline/api";
import { exitOf, runProcess, WORKER_MAIN, type RunningProcess } from "./support/processes.ts";

// Per-tenant concurrency caps, enforced by every worker through leases in Redis. Index 2 takes the
// `slow` model about 1.5 s without blocking the event loop, so runs of it overlap unless a cap
// keeps them apart; index 0 is quick. Jobs are submitted one at a time, each on an entry of its
// own (an entry larger than a cap runs alone, counting as the whole cap).
const slowInput = [{ name: "index", datatype: "INT64", shape: [1, 1], data: [2] }];
const quickInput = [{ name: "index", datatype: "INT64", shape: [1, 1], data: [0] }];
const WORKER = {
  WORKER_MODELS: "slow,lookup",
  INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
  WORKER_CONCURRENCY: "3",
  TENANT_CAP_CACHE_MS: "100",
  TENANT_CAP_WAIT_MS: "50",
  TENANT_CAP_LEASE_MS: "3000",
  QUEUE_LOCK_MS: "1000",
};

let stack: TestStack;
let db: Database;
let caps: TenantCapStore;
const workers: RunningWorker[] = [];
let doomed: RunningProcess | undefined;

beforeAll(async () => {
  stack = await startStack({ worker: false, faultModels: true });
  db = new Database(stack.db.url, { poolSize: 2 });
  caps = new TenantCapStore(db.pool);
});
afterAll(async () => {
  if (doomed && doomed.child.exitCode === null && doomed.child.signalCode === null) {
    doomed.child.kill("SIGKILL");
    await exitOf(doomed.child);
  }
  for (const w of workers) await w.close();
  await db?.close();
  await stack?.close();
});

async function startTwoWorkers(): Promise<void> {
  for (let i = 0; i < 2; i++)
    workers.push(await startWorker(loadWorkerEnv({ ...stack.workerEnv, ...WORKER }), testLogger));
}

async function stopWorkers(): Promise<void> {
  while (workers.length > 0) await workers.pop()!.close();
}

/** Submits `n` jobs one after the other (each on an entry of its own); their ids. */
async function submit(client: ApiClient, model: string, inputs: unknown, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await client.post("/v1/jobs", { model, inputs, cache: "bypass" });
    expect(res.status).toBe(202);
    ids.push(res.body.id as string);
  }
  return ids;
}

interface Run {
  id: string;
  status: string;
  attempts: number;
  startedAt: Date;
  completedAt: Date;
}

async function finished(ids: string[], timeoutMs = 60_000): Promise<Run[]> {
  return sleepUntil(
    async () => {
      const { rows } = await db.pool.query<Run>(
        `select id, status, attempts, "startedAt", "completedAt" from jobs where id = any($1::uuid[])`,
        [ids],
      );
      return rows.length === ids.length && rows.every((r) => r.status === "succeeded") ? rows : undefined;
    },
    { timeoutMs, message: "the jobs never all succeeded" },
  );
}

/** The most runs that were in progress at one instant. */
function mostAtOnce(runs: Run[]): number {
  let most = 0;
  for (const r of runs)
    most = Math.max(
      most,
      runs.filter((o) => o.startedAt < r.completedAt && r.startedAt < o.completedAt && o.startedAt <= r.startedAt)
        .length,
    );
  return most;
}

const capWaits = async (): Promise<number> => {
  let total = 0;
  for (const w of workers) total += (await w.metrics.tenantCapWaits.get()).values.reduce((sum, v) => sum + v.value, 0);
  return total;
};

describe("per-tenant concurrency caps", () => {
  it("hold a tenant to maxRunning across two workers without spending attempts; another tenant runs beside it, and the queue route shows the cap", async () => {
    await caps.set("alpha", "*", 1);
    await startTwoWorkers();
    const capped = await submit(stack.alpha, "slow", slowInput, 4);
    const free = await submit(stack.beta, "slow", slowInput, 2);

    const shown = await sleepUntil(
      async () => {
        const body = (await stack.alpha.get("/v1/models/slow/queue")).body;
        return body.tenant.caps[0]?.running === 1 ? body : undefined;
      },
      { message: "the queue route never showed alpha's cap in use" },
    );
    expect(shown.tenant.caps).toEqual([{ model: null, maxRunning: 1, running: 1 }]);
    expect((await stack.beta.get("/v1/models/slow/queue")).body.tenant.caps).toEqual([]);

    const alphaRuns = await finished(capped);
    const betaRuns = await finished(free);
    expect(mostAtOnce(alphaRuns)).toBe(1);
    // Waiting for the cap claimed nothing: each job ran once.
    expect(alphaRuns.map((r) => r.attempts)).toEqual([1, 1, 1, 1]);
    // Beta has no cap: its two jobs ran at once, while alpha's were still waiting their turns.
    expect(mostAtOnce(betaRuns)).toBe(2);
    const alphaLast = Math.max(...alphaRuns.map((r) => r.completedAt.getTime()));
    expect(betaRuns.every((r) => r.completedAt.getTime() < alphaLast)).toBe(true);
    expect(await capWaits()).toBeGreaterThan(0);
    await sleepUntil(async () => (await stack.alpha.get("/v1/models/slow/queue")).body.tenant.caps[0]?.running === 0, {
      message: "alpha's leases were never released",
    });
    await caps.set("alpha", "*", null);
    await stopWorkers();
  });

  it("a cap on one model holds that model's runs and leaves the tenant's other models alone", async () => {
    await caps.set("beta", "slow", 2);
    await startTwoWorkers();
    const slow = await submit(stack.beta, "slow", slowInput, 5);
    const quick = await submit(stack.beta, "lookup", quickInput, 3);
    const quickRuns = await finished(quick);
    const slowRuns = await finished(slow);
    expect(mostAtOnce(slowRuns)).toBe(2);
    expect(slowRuns.every((r) => r.attempts === 1)).toBe(true);
    // The lookup jobs did not wait behind the capped slow backlog.
    const slowLast = Math.max(...slowRuns.map((r) => r.completedAt.getTime()));
    expect(quickRuns.every((r) => r.completedAt.getTime() < slowLast)).toBe(true);
    expect((await stack.beta.get("/v1/models/lookup/queue")).body.tenant.caps).toEqual([]);
    expect((await stack.beta.get("/v1/models/slow/queue")).body.tenant.caps).toEqual([
      { model: "slow", maxRunning: 2, running: 0 },
    ]);
    await caps.set("beta", "slow", null);
    await stopWorkers();
  });

  it("jobs submitted together go onto entries no larger than the cap, so they too run within it", async () => {
    const key = await stack.createKey("gamma");
    await caps.set("gamma", "*", 2);
    // An API started now has read the cap before its first submit.
    const api = await startApi(loadApiEnv(stack.apiEnv), testLogger);
    try {
      const gamma = new ApiClient(api.url, key);
      await startTwoWorkers();
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => gamma.post("/v1/jobs", { model: "slow", inputs: slowInput, cache: "bypass" })),
      );
      const ids = answers.map((a) => a.body.id as string);
      const runs = await finished(ids);
      const { rows } = await db.pool.query<{ n: number }>(
        `select count(*)::int as n from jobs where id = any($1::uuid[]) group by "dispatchId"`,
        [ids],
      );
      expect(Math.max(...rows.map((r) => r.n))).toBeLessThanOrEqual(2);
      expect(mostAtOnce(runs)).toBe(2);
      expect(runs.every((r) => r.attempts === 1)).toBe(true);
    } finally {
      await api.close();
      await caps.set("gamma", "*", null);
      await stopWorkers();
    }
  });

  it("a worker killed while holding capacity: the lease lapses and the tenant's other work proceeds", async () => {
    await caps.set("alpha", "*", 1);
    doomed = runProcess(WORKER_MAIN, { ...stack.workerEnv, ...WORKER, WORKER_CONCURRENCY: "2", LOG_LEVEL: "info" });
    await sleepUntil(() => doomed!.output().includes("worker ready"), {
      timeoutMs: 30_000,
      message: "the worker never started",
    });
    const [held] = await submit(stack.alpha, "slow", slowInput, 1);
    await sleepUntil(
      async () =>
        (await db.pool.query(`select 1 from jobs where id = $1 and status = 'running'`, [held])).rowCount === 1,
      {
        intervalMs: 5,
        message: "the job never started",
      },
    );
    expect((await stack.alpha.get("/v1/models/slow/queue")).body.tenant.caps).toEqual([
      { model: null, maxRunning: 1, running: 1 },
    ]);
    doomed.child.kill("SIGKILL");
    await exitOf(doomed.child);

    // The dead worker's lease is still counted (it was renewed under a second ago), then lapses
    // by itself; the tenant's next job runs on the live workers, and so does the killed job once
    // BullMQ finds it stalled.
    const [next] = await submit(stack.alpha, "lookup", quickInput, 1);
    expect((await stack.alpha.get("/v1/models/slow/queue")).body.tenant.caps).toEqual([
      { model: null, maxRunning: 1, running: 1 },
    ]);
    await sleepUntil(async () => (await stack.alpha.get("/v1/models/slow/queue")).body.tenant.caps[0].running === 0, {
      message: "the dead worker's lease never lapsed",
    });
    await startTwoWorkers();
    const runs = await finished([held!, next!]);
    expect(runs.find((r) => r.id === next)!.attempts).toBe(1);
    await caps.set("alpha", "*", null);
  }, 90_000);
});
