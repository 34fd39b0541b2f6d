import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, LOOKUP_TABLE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack();
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const samples = [IRIS_SAMPLES.setosa, IRIS_SAMPLES.versicolor, IRIS_SAMPLES.virginica];
const labels = ["setosa", "versicolor", "virginica"];

async function completed(client = stack.alpha, id: string) {
  return sleepUntil(
    async () => {
      const b = (await client.get(`/v1/batches/${id}`)).body;
      return b.status === "completed" || b.status === "canceled" ? b : undefined;
    },
    { timeoutMs: 20_000, message: `batch ${id} never completed` },
  );
}

async function resultLines(id: string, client = stack.alpha) {
  const res = await client.get(`/v1/batches/${id}/results`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/application\/x-ndjson/);
  return res.text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

describe("batches", () => {
  it("a JSON batch runs every item; results stream in submission order with customIds", async () => {
    const items = Array.from({ length: 300 }, (_, i) => ({
      customId: `row-${i}`,
      inputs: [irisInput([samples[i % 3]!])],
    }));
    // About the run (attempts, startedAt): bypass iris's result cache, which earlier items may have filled.
    const created = await stack.alpha.post("/v1/batches", { model: "iris", items, cache: "bypass" });
    expect(created.status).toBe(202);
    expect(created.headers.get("location")).toBe(`/v1/batches/${created.body.id}`);
    expect(created.body).toMatchObject({ model: "iris", version: "1", total: 300, priority: "low" });
    const done = await completed(stack.alpha, created.body.id);
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 300, failed: 0, canceled: 0, expired: 0 });
    expect(done.completedAt).toBeDefined();
    const lines = await resultLines(created.body.id);
    expect(lines.map((l) => l.customId)).toEqual(items.map((i) => i.customId));
    expect(lines.map((l) => l.result.classifications[0].label)).toEqual(items.map((_, i) => labels[i % 3]));
    expect(lines.every((l) => l.status === "succeeded" && typeof l.jobId === "string")).toBe(true);
    // Items are jobs: each is readable and listable by batchId.
    const job = await stack.alpha.get(`/v1/jobs/${lines[5].jobId}`);
    expect(job.body).toMatchObject({ batchId: created.body.id, customId: "row-5", status: "succeeded", attempts: 1 });
    expect(job.body.startedAt).toBeDefined();
    const listed = await stack.alpha.get(`/v1/jobs?batchId=${created.body.id}&limit=500`);
    expect(listed.body.jobs).toHaveLength(300);
  });

  it("GET /v1/batches/:id?wait=N returns as soon as the last item finishes", async () => {
    await stack.stopWorker();
    // Bypassing the result cache: a batch answered from it would be completed before the wait begins.
    const created = (
      await stack.alpha.post("/v1/batches", {
        model: "iris",
        cache: "bypass",
        items: Array.from({ length: 20 }, () => ({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })),
      })
    ).body;
    const waiting = stack.alpha.get(`/v1/batches/${created.id}?wait=30`);
    const started = Date.now();
    await stack.startWorker();
    const done = await waiting;
    expect(done.body).toMatchObject({ status: "completed", counts: { succeeded: 20 } });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await stack.alpha.get(`/v1/batches/${created.id}?wait=61`)).status).toBe(422);
  });

  it("accepts an NDJSON body with the model in the query string", async () => {
    const body =
      Array.from({ length: 100 }, (_, i) =>
        JSON.stringify({ customId: `n${i}`, inputs: [irisInput([samples[(i + 1) % 3]!])] }),
      ).join("\n") + "\n";
    const created = await stack.alpha.request("POST", "/v1/batches?model=iris", {
      body,
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(created.status).toBe(202);
    expect(created.body.total).toBe(100);
    await completed(stack.alpha, created.body.id);
    const lines = await resultLines(created.body.id);
    expect(lines.map((l) => l.customId)).toEqual(Array.from({ length: 100 }, (_, i) => `n${i}`));
    expect(lines.map((l) => l.result.classifications[0].label)).toEqual(
      Array.from({ length: 100 }, (_, i) => labels[(i + 1) % 3]),
    );
  });

  it("an Idempotency-Key returns the first batch for the same body (NDJSON or JSON) and 409 for another", async () => {
    const ndjson = (n: number) =>
      Array.from({ length: n }, () => JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })).join("\n") + "\n";
    const post = (client: typeof stack.alpha, body: string, key: string, model = "iris") =>
      client.request("POST", `/v1/batches?model=${model}`, {
        body,
        headers: { "content-type": "application/x-ndjson", "idempotency-key": key },
      });
    const first = await post(stack.alpha, ndjson(3), "nd-1");
    expect(first.status).toBe(202);
    const again = await post(stack.alpha, ndjson(3), "nd-1");
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect((await post(stack.alpha, ndjson(4), "nd-1")).body.code).toBe("idempotency_key_reused");
    expect((await post(stack.alpha, ndjson(3), "nd-1", "lookup")).status).toBe(409); // same body, other settings
    expect((await post(stack.beta, ndjson(3), "nd-1")).body.id).not.toBe(first.body.id); // keys are per tenant
    expect(await db.prisma.batch.count({ where: { idempotencyKey: "nd-1" } })).toBe(2);

    const json = { model: "iris", items: [{ inputs: [irisInput([IRIS_SAMPLES.virginica])] }] };
    const one = await stack.alpha.request("POST", "/v1/batches", {
      body: JSON.stringify(json),
      headers: { "content-type": "application/json", "idempotency-key": "js-1" },
    });
    const two = await stack.alpha.request("POST", "/v1/batches", {
      body: JSON.stringify(json),
      headers: { "content-type": "application/json", "idempotency-key": "js-1" },
    });
    expect([one.status, two.status, two.body.id]).toEqual([202, 200, one.body.id]);
    expect(
      (
        await stack.alpha.request("POST", "/v1/batches", {
          body: JSON.stringify({ ...json, priority: "high" }),
          headers: { "content-type": "application/json", "idempotency-key": "js-1" },
        })
      ).status,
    ).toBe(409);
  });

  it("a batch with invalid items answers 422 naming item and field, and creates nothing", async () => {
    const before = { jobs: await db.prisma.job.count(), batches: await db.prisma.batch.count() };
    const items = [
      { inputs: [irisInput([IRIS_SAMPLES.setosa])] },
      { inputs: [{ name: "features", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] },
      { inputs: [irisInput([IRIS_SAMPLES.setosa])] },
      { inputs: "nope" },
    ];
    const res = await stack.alpha.post("/v1/batches", { model: "iris", items });
    expect(res.status).toBe(422);
    const paths = res.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(["/items/1/inputs/0/shape/1", "/items/3/inputs"]));
    expect(await db.prisma.job.count()).toBe(before.jobs);
    // Counted before and after: a batch of 4 from another test ("item failures") is not this one.
    expect(await db.prisma.batch.count()).toBe(before.batches);
  });

  it("malformed NDJSON names the line; an unknown model is 404", async () => {
    const bad = await stack.alpha.request("POST", "/v1/batches?model=iris", {
      body: `${JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })}\n{oops\n`,
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain("line 2");
    expect((await stack.alpha.post("/v1/batches", { model: "nope", items: [{ inputs: [] }] })).status).toBe(404);
  });

  it("item failures stay per item: counts and results show which", async () => {
    const indexes = [0, 1, 7, 2];
    const items = indexes.map((i) => ({
      customId: `i${i}`,
      inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [i] }],
    }));
    const created = await stack.alpha.post("/v1/batches", { model: "lookup", items });
    const done = await completed(stack.alpha, created.body.id);
    expect(done.counts).toMatchObject({ succeeded: 3, failed: 1 });
    const lines = await resultLines(created.body.id);
    expect(lines.map((l) => l.status)).toEqual(["succeeded", "succeeded", "failed", "succeeded"]);
    expect(lines[2].error.code).toBe("inference_error");
    expect(lines[3].result.outputs[0].data).toEqual(LOOKUP_TABLE[2]);
  });

  it("cancel stops every item not yet terminal; a finished batch answers 409; other tenants get 404", async () => {
    await stack.stopWorker();
    try {
      const items = Array.from({ length: 50 }, () => ({ inputs: [irisInput([IRIS_SAMPLES.setosa])] }));
      // Bypassing the result cache, so that the items wait for a worker (earlier tests scored setosa).
      const created = (await stack.alpha.post("/v1/batches", { model: "iris", items, cache: "bypass" })).body;
      expect((await stack.beta.get(`/v1/batches/${created.id}`)).status).toBe(404);
      expect((await stack.beta.get(`/v1/batches/${created.id}/results`)).status).toBe(404);
      expect((await stack.beta.post(`/v1/batches/${created.id}/cancel`)).status).toBe(404);
      expect((await stack.alpha.get(`/v1/batches/${created.id}`)).body.status).toBe("queued");
      const canceled = await stack.alpha.post(`/v1/batches/${created.id}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ status: "canceled", counts: { canceled: 50, queued: 0 } });
      expect(canceled.body.completedAt).toBeDefined();
      expect((await stack.alpha.post(`/v1/batches/${created.id}/cancel`)).status).toBe(409);
    } finally {
      await stack.startWorker();
    }
  });
});
