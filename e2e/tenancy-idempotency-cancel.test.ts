import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IRIS_SAMPLES, irisJob } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(async () => {
  await stack?.close();
});

describe("tenants", () => {
  it("a job of one tenant is 404 to another, for read, wait, cancel and list", async () => {
    const job = (await stack.alpha.post("/v1/jobs", irisJob())).body;
    expect((await stack.alpha.get(`/v1/jobs/${job.id}`)).status).toBe(200);
    expect((await stack.beta.get(`/v1/jobs/${job.id}`)).status).toBe(404);
    expect((await stack.beta.get(`/v1/jobs/${job.id}?wait=1`)).status).toBe(404);
    expect((await stack.beta.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(404);
    const list = await stack.beta.get("/v1/jobs");
    expect(list.body.jobs.map((j: { id: string }) => j.id)).not.toContain(job.id);
    expect((await stack.alpha.get(`/v1/jobs/${job.id}`)).body.status).toBe("queued");
  });

  it("an id that is not a uuid is a 404, not a 500", async () => {
    expect((await stack.alpha.get("/v1/jobs/not-a-uuid")).status).toBe(404);
  });

  it("keys are stored hashed", async () => {
    const key = await stack.createKey("gamma");
    const { Database } = await import("@inferline/db");
    const db = new Database(stack.db.url, { poolSize: 1 });
    const rows = await db.pool.query(`select "keyHash", prefix from api_keys`);
    await db.close();
    expect(rows.rows.some((r) => r.keyHash === key)).toBe(false);
    expect(JSON.stringify(rows.rows)).not.toContain(key);
    expect(rows.rows.some((r) => key.startsWith(r.prefix))).toBe(true);
  });
});

describe("Idempotency-Key", () => {
  it("same key and same body returns the first job with 200; another body is 409", async () => {
    const body = irisJob([IRIS_SAMPLES.versicolor], { metadata: { a: "1", b: "2" } });
    const first = await stack.alpha.post("/v1/jobs", body, { "idempotency-key": "order-42" });
    expect(first.status).toBe(202);
    // Same body with keys in another order is the same request.
    const reordered = { metadata: { b: "2", a: "1" }, inputs: body.inputs, model: "iris" };
    const again = await stack.alpha.post("/v1/jobs", reordered, { "idempotency-key": "order-42" });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await stack.alpha.post("/v1/jobs", irisJob([IRIS_SAMPLES.setosa]), { "idempotency-key": "order-42" });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe("idempotency_key_reused");
  });

  it("keys are per tenant", async () => {
    const a = await stack.alpha.post("/v1/jobs", irisJob(), { "idempotency-key": "shared-key" });
    const b = await stack.beta.post("/v1/jobs", irisJob(), { "idempotency-key": "shared-key" });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(a.body.id).not.toBe(b.body.id);
  });

  it("concurrent requests with one key create one job", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => stack.alpha.post("/v1/jobs", irisJob(), { "idempotency-key": "race" })),
    );
    const ids = new Set(results.filter((r) => r.status < 300).map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(results.every((r) => [200, 202, 409].includes(r.status))).toBe(true);
  });
});

describe("cancel", () => {
  // Jobs that wait for a worker: the result cache, which would answer an iris job seen before, is bypassed.
  const QUEUED = { cache: "bypass" };

  it("cancels a queued job; a terminal job answers 409", async () => {
    const job = (await stack.alpha.post("/v1/jobs", irisJob(undefined, QUEUED))).body;
    const canceled = await stack.alpha.post(`/v1/jobs/${job.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe("canceled");
    expect(canceled.body.completedAt).toBeDefined();
    const again = await stack.alpha.post(`/v1/jobs/${job.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("job_not_cancelable");
  });

  it("a canceled job never runs", async () => {
    const job = (await stack.alpha.post("/v1/jobs", irisJob(undefined, QUEUED))).body;
    await stack.alpha.post(`/v1/jobs/${job.id}/cancel`);
    const control = (await stack.alpha.post("/v1/jobs", irisJob(undefined, QUEUED))).body;
    await stack.startWorker();
    try {
      expect((await stack.alpha.get(`/v1/jobs/${control.id}?wait=10`)).body.status).toBe("succeeded");
      const after = (await stack.alpha.get(`/v1/jobs/${job.id}`)).body;
      expect(after.status).toBe("canceled");
      expect(after.attempts).toBe(0);
      expect(after.result).toBeUndefined();
    } finally {
      await stack.stopWorker();
    }
  });

  it("a long-poll on a job returns as soon as it is canceled", async () => {
    const job = (await stack.alpha.post("/v1/jobs", irisJob(undefined, QUEUED))).body;
    const started = Date.now();
    const waiting = stack.alpha.get(`/v1/jobs/${job.id}?wait=30`);
    await stack.alpha.post(`/v1/jobs/${job.id}/cancel`);
    const res = await waiting;
    expect(res.body.status).toBe("canceled");
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("list", () => {
  it("pages newest first with a cursor and filters by status and model", async () => {
    const tenant = stack.alpha.withKey(await stack.createKey("lister"));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await tenant.post("/v1/jobs", irisJob())).body.id);
    const lookupJob = (
      await tenant.post("/v1/jobs", {
        model: "lookup",
        inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [1] }],
      })
    ).body;
    await tenant.post(`/v1/jobs/${ids[0]}/cancel`);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await tenant.get(`/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.body.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.jobs.map((j: { id: string }) => j.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([lookupJob.id, ...[...ids].reverse()]);

    const canceled = await tenant.get("/v1/jobs?status=canceled");
    expect(canceled.body.jobs.map((j: { id: string }) => j.id)).toEqual([ids[0]]);
    const lookups = await tenant.get("/v1/jobs?model=lookup");
    expect(lookups.body.jobs.map((j: { id: string }) => j.id)).toEqual([lookupJob.id]);
  });

  it("rejects a bad limit, status or cursor", async () => {
    expect((await stack.alpha.get("/v1/jobs?limit=501")).status).toBe(422);
    expect((await stack.alpha.get("/v1/jobs?status=done")).status).toBe(422);
    expect((await stack.alpha.get("/v1/jobs?cursor=garbage")).status).toBe(400);
  });
});

describe("models and health", () => {
  it("lists the repository and describes one model", async () => {
    const list = await stack.alpha.get("/v1/models");
    expect(list.body.models.map((m: { name: string }) => m.name)).toEqual(["iris", "lookup"]);
    const iris = await stack.alpha.get("/v1/models/iris");
    expect(iris.body).toMatchObject({
      name: "iris",
      versions: ["1"],
      inputs: [
        {
          name: "features",
          datatype: "FP32",
          shape: [-1, 4],
          features: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        },
      ],
      outputs: [
        { name: "probabilities", datatype: "FP32", shape: [-1, 3], labels: ["setosa", "versicolor", "virginica"] },
      ],
      batching: { maxBatchSize: expect.any(Number), maxQueueDelayMs: expect.any(Number) },
    });
    expect(JSON.stringify(iris.body)).not.toContain("iris.onnx");
    expect((await stack.alpha.get("/v1/models/nope")).status).toBe(404);
  });

  it("healthz and readyz need no key", async () => {
    expect((await stack.anonymous.get("/healthz")).body).toEqual({ status: "ok" });
    const ready = await stack.anonymous.get("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ postgres: "ok", redis: "ok", models: "ok" });
    const metrics = await stack.anonymous.get("/metrics");
    expect(metrics.text).toContain("inferline_http_request_duration_seconds");
  });
});
