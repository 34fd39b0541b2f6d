import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantStore, type FinishedJob } from "@inferline/db";
import { ApiClient, FIXTURE_ADAPTERS_MODULE, irisJob, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// A slot's hold is bounded while another tenant waits: the `costly` test model takes 20 ms per
// row, one row after another, so a batch chunk of 200 rows holds a worker slot for 4 s. With the
// worker stopped, tenant A queues such a chunk and tenant B one job; then one worker (one slot,
// so entries run one at a time) drains them. Without the bound, B's job waits for all 200 of A's
// rows; with it, A's run stops after a slice (SLOT_HOLD_MS of rows) and hands the rest back.

let stack: TestStack;
let admin: Database;
let tenants: TenantStore;
beforeAll(async () => {
  stack = await startStack({ worker: false, faultModels: true });
  admin = new Database(stack.db.url, { poolSize: 1 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await admin?.close();
  await stack?.close();
});

async function tenant(name: string, settings: { weight?: number } = {}): Promise<{ client: ApiClient; id: string }> {
  const created = await tenants.createKey(name);
  if (settings.weight) await tenants.updateSettings(name, settings);
  return { client: stack.alpha.withKey(created.key), id: created.tenant.id };
}

/** A worker that serves `costly` (its adapter is a test fixture) and iris, with a bound of 100 ms. */
const COSTLY = {
  WORKER_MODELS: "costly,iris",
  INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
  SLOT_HOLD_MS: "100",
};
const costlyInputs = [{ name: "index", datatype: "INT64", shape: [1, 1], data: [1] }];
const costlyItems = (n: number) => Array.from({ length: n }, () => ({ inputs: costlyInputs }));

async function batchState(client: ApiClient, id: string): Promise<{ status: string; succeeded: number }> {
  const { body } = await client.get(`/v1/batches/${id}`);
  return { status: body.status as string, succeeded: body.counts.succeeded as number };
}

async function yields(model: string): Promise<number> {
  const metric = await stack.worker!.metrics.slotYields.get();
  return metric.values.filter((v) => v.labels.model === model).reduce((sum, v) => sum + v.value, 0);
}

describe("a worker slot's hold while another tenant waits", () => {
  it("a light tenant's job starts after a slice of a heavy tenant's chunk, not after the whole chunk, and the chunk still runs once, whole, spending no attempt", async () => {
    const [heavy, light] = [await tenant("heavy-chunk"), await tenant("light-job")];
    const batch = await heavy.client.post("/v1/batches", {
      model: "costly",
      priority: "normal",
      items: costlyItems(200),
    });
    expect(batch.status).toBe(202);
    const job = await light.client.post("/v1/jobs", { model: "costly", inputs: costlyInputs, cache: "bypass" });
    expect(job.status).toBe(202);

    // Read when the light job's result is written (the hook runs in that write, before the one slot takes more work).
    let heavyRowsBefore = -1;
    await stack.startWorker(
      { ...COSTLY, WORKER_CONCURRENCY: "1" },
      {
        onFinished: async (jobs: FinishedJob[]) => {
          if (jobs.some((j) => j.id === job.body.id))
            heavyRowsBefore = (await batchState(heavy.client, batch.body.id)).succeeded;
        },
      },
    );
    try {
      await sleepUntil(
        async () => heavyRowsBefore >= 0 && (await batchState(heavy.client, batch.body.id)).status === "completed",
        {
          timeoutMs: 60_000,
          message: "the light job or the heavy batch did not finish",
        },
      );
      expect(await yields("costly")).toBeGreaterThanOrEqual(1);
    } finally {
      await stack.stopWorker();
    }
    // One slice of rows, not the 200 of the chunk (a slice of a model not yet measured is 4 rows).
    expect(heavyRowsBefore).toBeGreaterThan(0);
    expect(heavyRowsBefore).toBeLessThanOrEqual(20);
    expect(await batchState(heavy.client, batch.body.id)).toEqual({ status: "completed", succeeded: 200 });
    const { rows } = await admin.pool.query<{ attempts: number }>(
      `select attempts from batch_chunks where "batchId" = $1`,
      [batch.body.id],
    );
    expect(rows).toEqual([{ attempts: 1 }]);
  }, 90_000);

  it("a light tenant's job submitted while a heavy tenant's jobs run starts within a few slices of them", async () => {
    const [heavy, light] = [await tenant("heavy-jobs"), await tenant("light-late")];
    // 150 jobs submitted 50 at a time share few queue entries; 150 rows are 3 s of the slot.
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let i = 0; i < 3; i++) {
          const res = await heavy.client.post("/v1/jobs", { model: "costly", inputs: costlyInputs, cache: "bypass" });
          expect(res.status).toBe(202);
          ids.push(res.body.id as string);
        }
      }),
    );
    const order: string[] = [];
    await stack.startWorker(
      { ...COSTLY, WORKER_CONCURRENCY: "1" },
      { onFinished: async (jobs: FinishedJob[]) => void order.push(...jobs.map((j) => j.tenantId)) },
    );
    try {
      // Once the heavy tenant's rows run (the model is measured by then), the light tenant submits.
      await sleepUntil(
        async () =>
          (await admin.pool.query(`select 1 from jobs where "tenantId" = $1 and status = 'running'`, [heavy.id]))
            .rowCount! > 0,
        { timeoutMs: 30_000 },
      );
      const started = (
        await admin.pool.query(`select count(*)::int as n from jobs where "tenantId" = $1 and status = 'succeeded'`, [
          heavy.id,
        ])
      ).rows[0].n as number;
      const late = await light.client.post("/v1/jobs", { model: "costly", inputs: costlyInputs, cache: "bypass" });
      expect(late.status).toBe(202);
      await sleepUntil(async () => order.length >= 151, { timeoutMs: 60_000, message: "not every job finished" });
      const heavyBefore = order.slice(0, order.indexOf(light.id)).filter((t) => t === heavy.id).length;
      // What ran before the light job was submitted, plus a few slices of 5 rows (100 ms of 20 ms rows) at most.
      expect(heavyBefore - started).toBeLessThan(60);
      expect(heavyBefore).toBeLessThan(150);
    } finally {
      await stack.stopWorker();
    }
    const { rows } = await admin.pool.query<{ attempts: number; n: number }>(
      `select attempts, count(*)::int as n from jobs where id = any($1::uuid[]) group by attempts`,
      [ids],
    );
    expect(rows).toEqual([{ attempts: 1, n: 150 }]);
  }, 120_000);

  it("a tenant alone gets every slot and runs its entries whole: none is handed back", async () => {
    const alone = await tenant("alone");
    const batches = [
      await alone.client.post("/v1/batches", { model: "costly", items: costlyItems(60) }),
      await alone.client.post("/v1/batches", { model: "costly", items: costlyItems(60) }),
    ];
    expect(batches.map((b) => b.status)).toEqual([202, 202]);
    await stack.startWorker({ ...COSTLY, WORKER_CONCURRENCY: "2" });
    try {
      await sleepUntil(
        async () =>
          (await Promise.all(batches.map((b) => batchState(alone.client, b.body.id)))).every(
            (s) => s.status === "completed",
          ),
        { timeoutMs: 60_000 },
      );
      expect(await yields("costly")).toBe(0);
    } finally {
      await stack.stopWorker();
    }
    // Both chunks ran at once, one in each slot: each started before the other completed.
    const { rows } = await admin.pool.query<{ startedAt: Date; completedAt: Date }>(
      `select "startedAt", "completedAt" from batch_chunks where "batchId" = any($1::uuid[])`,
      [batches.map((b) => b.body.id)],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]!.startedAt.getTime()).toBeLessThan(rows[1]!.completedAt.getTime());
    expect(rows[1]!.startedAt.getTime()).toBeLessThan(rows[0]!.completedAt.getTime());
  }, 90_000);

  it("while both are backlogged, a tenant of weight 3 gets about three times the share of a tenant of weight 1", async () => {
    const [triple, single] = [await tenant("triple", { weight: 3 }), await tenant("single-w")];
    const submit = async (client: ApiClient, n: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < n) {
            next++;
            expect((await client.post("/v1/jobs", irisJob(undefined, { cache: "bypass" }))).status).toBe(202);
          }
        }),
      );
    };
    await submit(triple.client, 1200);
    await submit(single.client, 1200);
    const order: string[] = [];
    await stack.startWorker(
      { ...COSTLY, WORKER_CONCURRENCY: "1" },
      { onFinished: async (jobs: FinishedJob[]) => void order.push(...jobs.map((j) => j.tenantId)) },
    );
    try {
      await sleepUntil(async () => order.length >= 2400, { timeoutMs: 60_000 });
    } finally {
      await stack.stopWorker();
    }
    const first = order.slice(0, 1200);
    const [t, s] = [first.filter((x) => x === triple.id).length, first.filter((x) => x === single.id).length];
    expect(t + s).toBe(1200);
    expect(t / s).toBeGreaterThan(2.4);
    expect(t / s).toBeLessThan(3.8);
  }, 120_000);
});
