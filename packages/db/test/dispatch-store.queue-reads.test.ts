import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { DispatchStore, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const dispatches = () => new DispatchStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);
const uniqueModel = () => `model-${crypto.randomUUID()}`;

/** `n` jobs of one queue entry. */
function entry(tenant: string, n: number, model: string) {
  const dispatchId = crypto.randomUUID();
  return Array.from({ length: n }, () => newJob(tenant, { dispatchId, model }));
}

async function start(dispatchId: string): Promise<void> {
  await database().pool.query(`update dispatches set "startedAt" = now() where id = $1`, [dispatchId]);
}

describe("DispatchStore queue reads", () => {
  it("queuedByTenant: the tenant's jobs and batch items not started, over every model", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    const running = entry(a, 5, uniqueModel());
    await jobs().insertMany([...entry(a, 3, uniqueModel()), ...running, ...entry(b, 7, uniqueModel())]);
    await createBatch(database(), a, { model: uniqueModel(), sizes: [4, 2] });
    await start(running[0]!.dispatchId!);
    expect(await dispatches().queuedByTenant(a)).toBe(3 + 4 + 2);
    expect(await dispatches().queuedByTenant(b)).toBe(7);
    expect(await dispatches().queuedByTenant(crypto.randomUUID())).toBe(0);
  });

  it("queuedByClass: each tenant, model and priority class's work not started, in the order asked, leaving out the entries named", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    const [m, other] = [uniqueModel(), uniqueModel()];
    const started = entry(a, 5, m);
    const leftOut = entry(a, 4, m);
    const high = Array.from({ length: 2 }, () => newJob(a, { model: m, priority: "high" }));
    await jobs().insertMany([
      ...entry(a, 3, m),
      ...started,
      ...leftOut,
      ...high,
      ...entry(b, 7, m),
      ...entry(a, 11, other),
    ]);
    await createBatch(database(), a, { model: m, sizes: [6] }); // a batch is "low" here
    await start(started[0]!.dispatchId!);
    const classes = [
      { tenantId: a, model: m, priority: "normal" as const },
      { tenantId: b, model: m, priority: "normal" as const },
      { tenantId: a, model: m, priority: "high" as const },
      { tenantId: a, model: m, priority: "low" as const },
      { tenantId: a, model: uniqueModel(), priority: "normal" as const },
    ];
    expect(await dispatches().queuedByClass(classes, [leftOut[0]!.dispatchId!])).toEqual([3, 7, 2, 6, 0]);
    expect(await dispatches().queuedByClass(classes.slice(0, 1))).toEqual([7]);
    expect(await dispatches().queuedByClass([])).toEqual([]);
  });

  it("tenantQueue: the tenant's queued and running work of one model; modelQueue: the model's depth and its oldest entry's wait", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    const model = uniqueModel();
    expect(await dispatches().modelQueue(model)).toEqual({ depth: 0, oldestQueuedAgeSeconds: null });
    const [oldest, running, other] = [entry(a, 2, model), entry(a, 3, model), entry(b, 4, model)];
    await jobs().insertMany([...oldest, ...running, ...other, ...entry(a, 6, uniqueModel())]);
    await start(running[0]!.dispatchId!);
    await database().pool.query(`update dispatches set "createdAt" = now() - interval '90 seconds' where id = $1`, [
      oldest[0]!.dispatchId,
    ]);
    await database().pool.query(`update dispatches set "createdAt" = now() - interval '120 seconds' where id = $1`, [
      running[0]!.dispatchId,
    ]);

    expect(await dispatches().tenantQueue(model, a)).toEqual({ queued: 2, running: 3 });
    expect(await dispatches().tenantQueue(model, b)).toEqual({ queued: 4, running: 0 });
    const whole = await dispatches().modelQueue(model);
    expect(whole.depth).toBe(9);
    // The running entry is older, but only entries not started count for the wait.
    expect(whole.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(whole.oldestQueuedAgeSeconds).toBeLessThan(120);
  });
});
