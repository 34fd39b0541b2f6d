import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, irisJob, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// GET /v1/models/:name/queue: the caller's queued and running work on the model (from its queue
// entries' rows), the model's depth and the age of its oldest entry not started.

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({ worker: false });
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const status = async (client = stack.alpha) => {
  const res = await client.get("/v1/models/iris/queue");
  expect(res.status).toBe(200);
  return res.body as {
    model: string;
    tenant: { queued: number; running: number };
    depth: number;
    oldestQueuedAgeSeconds: number | null;
  };
};

describe("GET /v1/models/:name/queue", () => {
  it("counts the caller's queued and running jobs and batch items, the model's depth and its oldest wait; the model-wide part is at most about a second old", async () => {
    expect(await status()).toEqual({
      model: "iris",
      tenant: { queued: 0, running: 0, caps: [] },
      depth: 0,
      oldestQueuedAgeSeconds: null,
    });

    // Identical jobs that each wait for a worker: the result cache and its single flight (which would queue one of them) are bypassed.
    const queued = irisJob(undefined, { cache: "bypass" });
    for (let i = 0; i < 3; i++) expect((await stack.alpha.post("/v1/jobs", queued)).status).toBe(202);
    const batch = await stack.alpha.post("/v1/batches", {
      model: "iris",
      items: Array.from({ length: 4 }, () => ({ inputs: [irisInput([IRIS_SAMPLES.virginica])] })),
    });
    expect(batch.status).toBe(202);
    await Promise.all([stack.beta.post("/v1/jobs", queued), stack.beta.post("/v1/jobs", queued)]);
    // One of alpha's entries taken by a worker (as its claim marks it), and waiting a minute so far.
    const { rows } = await db.pool.query<{ id: string }>(
      `update dispatches set "startedAt" = now() where id = (select d.id from dispatches d join tenants t on t.id = d."tenantId" where t.name = 'alpha' and not d."batchChunk" limit 1) returning id`,
    );
    await db.pool.query(`update dispatches set "createdAt" = now() - interval '60 seconds' where "batchChunk"`);
    expect(rows).toHaveLength(1);

    // The caller's part is read each time; the model's, once its reading is a second old.
    const alpha = await sleepUntil(async () => ((await status()).depth === 9 ? status() : undefined), {
      timeoutMs: 10_000,
      message: "the depth never showed 9",
    });
    expect(alpha.tenant).toEqual({ queued: 6, running: 1, caps: [] });
    expect(alpha.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(60);
    expect(alpha.oldestQueuedAgeSeconds).toBeLessThan(120);
    expect(await status(stack.beta)).toMatchObject({ tenant: { queued: 2, running: 0 }, depth: 9 });

    await stack.startWorker();
    try {
      const drained = await sleepUntil(
        async () => {
          const s = await status();
          return s.depth === 0 ? s : undefined;
        },
        { timeoutMs: 20_000, message: "the queue never drained" },
      );
      expect(drained).toEqual({
        model: "iris",
        tenant: { queued: 0, running: 0, caps: [] },
        depth: 0,
        oldestQueuedAgeSeconds: null,
      });
    } finally {
      await stack.stopWorker();
    }
  });

  it("answers 404 for an unknown model and 401 without a key; the OpenAPI document describes it", async () => {
    expect((await stack.alpha.get("/v1/models/nope/queue")).status).toBe(404);
    expect((await stack.anonymous.get("/v1/models/iris/queue")).status).toBe(401);
    const doc = await stack.anonymous.get("/openapi.json");
    expect(doc.body.paths["/v1/models/{name}/queue"].get.responses["200"]).toBeDefined();
    expect(doc.body.components.schemas.QueueStatus.required).toEqual(
      expect.arrayContaining(["model", "tenant", "depth", "oldestQueuedAgeSeconds"]),
    );
  });
});
