import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantStore, type FinishedJob } from "@inferline/db";
import { ApiClient, IRIS_SAMPLES, irisInput, irisJob, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Fair share between tenants: with the worker stopped, tenants queue work; then one worker
// (WORKER_CONCURRENCY 1, so queue entries run one at a time in the queue's order) drains it, and
// the order in which jobs finished (the worker's onFinished hook, one call per result write, in
// commit order) shows who was served when. Plain first-in first-out would run every job of the
// tenant that queued first before any of the other's.

let stack: TestStack;
let admin: Database;
let tenants: TenantStore;
beforeAll(async () => {
  stack = await startStack({ worker: false });
  admin = new Database(stack.db.url, { poolSize: 1 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await admin?.close();
  await stack?.close();
});

/** A client of a new tenant (its key not yet seen by the API, so its settings are read at the first request). */
async function tenant(name: string, settings: { weight?: number } = {}): Promise<{ client: ApiClient; id: string }> {
  const created = await tenants.createKey(name);
  if (settings.weight) await tenants.updateSettings(name, settings);
  return { client: stack.alpha.withKey(created.key), id: created.tenant.id };
}

/**
 * Submits `n` iris jobs, `concurrency` at a time (concurrent submits share insert statements and
 * queue entries). Each runs: the result cache and its single flight are bypassed (these tests are
 * about the order of runs).
 */
async function submit(client: ApiClient, n: number, concurrency: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const res = await client.post("/v1/jobs", irisJob(undefined, { cache: "bypass" }));
        expect(res.status).toBe(202);
        ids.push(res.body.id as string);
      }
    }),
  );
  return ids;
}

/**
 * Starts one worker running one queue entry at a time; once `total` jobs have finished and
 * `until` holds, stops it and returns the tenant of each job it finished, in order.
 */
async function drain(total: number, until: () => Promise<boolean> = async () => true): Promise<string[]> {
  const order: string[] = [];
  await stack.startWorker(
    { WORKER_CONCURRENCY: "1" },
    { onFinished: async (jobs: FinishedJob[]) => void order.push(...jobs.map((j) => j.tenantId)) },
  );
  try {
    await sleepUntil(async () => order.length >= total && (await until()), {
      timeoutMs: 60_000,
      message: `fewer than ${total} jobs finished, or the rest of the work did not`,
    });
  } finally {
    await stack.stopWorker();
  }
  return order;
}

describe("fair share between tenants", () => {
  it("a light tenant's few jobs run before most of a heavy tenant's backlog (jobs and a batch) queued before them", async () => {
    const [heavy, light] = [await tenant("heavy"), await tenant("light")];
    await submit(heavy.client, 3000, 64);
    const batch = await heavy.client.post("/v1/batches", {
      model: "iris",
      priority: "normal",
      items: Array.from({ length: 1500 }, () => ({ inputs: [irisInput([IRIS_SAMPLES.versicolor])] })),
    });
    expect(batch.status).toBe(202);
    await submit(light.client, 5, 1);

    const batchDone = async () => (await heavy.client.get(`/v1/batches/${batch.body.id}`)).body.status === "completed";
    const order = await drain(3005, batchDone);
    const lastLight = order.lastIndexOf(light.id);
    const heavyBefore = order.slice(0, lastLight).filter((t) => t === heavy.id).length;
    // The light tenant's jobs go to the front of the class; at most the heavy tenant's first
    // entries (queued with nothing of theirs ahead) share its places. FIFO would give 3,000.
    expect(heavyBefore).toBeLessThan(300);

    // The batch came after the heavy tenant's 3,000 jobs: its chunks ran after every light job.
    const { rows } = await admin.pool.query<{ first: Date; lightDone: Date }>(
      `select (select min("startedAt") from batch_chunks where "batchId" = $1) as first,
              (select max("completedAt") from jobs where "tenantId" = $2) as "lightDone"`,
      [batch.body.id, light.id],
    );
    expect(rows[0]!.first.getTime()).toBeGreaterThanOrEqual(rows[0]!.lightDone.getTime());
  }, 120_000);

  it("a light tenant's small batch runs before a heavy tenant's huge batch queued before it, not after", async () => {
    const [heavy, light] = [await tenant("heavy-batch"), await tenant("light-batch")];
    const items = (n: number) => Array.from({ length: n }, () => ({ inputs: [irisInput([IRIS_SAMPLES.setosa])] }));
    const big = await heavy.client.post("/v1/batches", { model: "iris", items: items(3000) });
    const small = await light.client.post("/v1/batches", { model: "iris", items: items(20) });
    expect([big.status, small.status]).toEqual([202, 202]);
    const completed = async (client: ApiClient, id: string) =>
      (await client.get(`/v1/batches/${id}`)).body.status === "completed";
    await drain(
      0,
      async () => (await completed(heavy.client, big.body.id)) && (await completed(light.client, small.body.id)),
    );

    const { rows } = await admin.pool.query<{ batchId: string; startedAt: Date }>(
      `select "batchId", "startedAt" from batch_chunks where "batchId" = any($1::uuid[]) order by "startedAt"`,
      [[big.body.id, small.body.id]],
    );
    // 6 chunks of the big batch and 1 of the small one, run one at a time: only the big batch's
    // first chunk (queued with nothing of its tenant ahead, like the small one) runs before it.
    expect(rows).toHaveLength(7);
    expect(rows.findIndex((r) => r.batchId === small.body.id)).toBe(1);
  });

  it("while both are backlogged, a tenant of weight 2 gets about twice the share of a tenant of weight 1", async () => {
    const [double, single] = [await tenant("double", { weight: 2 }), await tenant("single")];
    // The doubly weighted tenant queues first: with FIFO it would take every place in the first
    // 1,200; with equal weights, half of them.
    await submit(double.client, 1200, 16);
    await submit(single.client, 1200, 16);

    const order = await drain(2400);
    const first = order.slice(0, 1200);
    const [d, s] = [first.filter((t) => t === double.id).length, first.filter((t) => t === single.id).length];
    expect(d + s).toBe(1200);
    expect(d / s).toBeGreaterThan(1.6);
    expect(d / s).toBeLessThan(2.5);
  });
});
