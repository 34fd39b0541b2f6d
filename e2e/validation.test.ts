import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, irisJob } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// No worker: anything that reached the queue would stay queued, and the database tells.
let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({ worker: false, api: { BODY_LIMIT: "64kb" } });
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

async function jobCount(): Promise<number> {
  return db.prisma.job.count();
}

/** Sends a request that must be refused, and checks that it stored no job. */
async function refused<T>(send: () => Promise<T>): Promise<T> {
  const before = await jobCount();
  const res = await send();
  expect(await jobCount()).toBe(before);
  return res;
}

function expectProblem(res: { status: number; headers: Headers; body: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({
    status,
    code,
    title: expect.any(String),
    type: expect.stringContaining(code.replaceAll("_", "-")),
    detail: expect.any(String),
  });
}

describe("bad input never reaches a worker", () => {
  it("malformed JSON: 400", async () => {
    const res = await refused(() =>
      stack.alpha.request("POST", "/v1/jobs", {
        body: '{"model": "iris", "inputs": [',
        headers: { "content-type": "application/json" },
      }),
    );
    expectProblem(res, 400, "malformed_json");
  });

  it("unknown model: 404 naming /model", async () => {
    const res = await refused(() =>
      stack.alpha.post("/v1/jobs", { model: "nope", inputs: [irisInput([IRIS_SAMPLES.setosa])] }),
    );
    expectProblem(res, 404, "not_found");
    expect(res.body.detail).toContain("nope");
    expect(res.body.errors).toEqual([{ path: "/model", message: expect.stringContaining("nope") }]);
  });

  it("unknown version: 404 naming /version", async () => {
    const res = await refused(() => stack.alpha.post("/v1/jobs", irisJob(undefined, { version: "9" })));
    expectProblem(res, 404, "not_found");
    expect(res.body.errors).toEqual([{ path: "/version", message: expect.stringContaining('"9"') }]);
  });

  it("a batch's unknown model or version names its field: /model in a JSON body, /query/model for NDJSON", async () => {
    const item = { inputs: [irisInput([IRIS_SAMPLES.setosa])] };
    const body = `${JSON.stringify(item)}\n`;
    const ndjson = (query: string) =>
      stack.alpha.request("POST", `/v1/batches?${query}`, {
        body,
        headers: { "content-type": "application/x-ndjson" },
      });
    const cases: Array<[Promise<{ status: number; headers: Headers; body: any }>, string]> = [
      [stack.alpha.post("/v1/batches", { model: "nope", items: [item] }), "/model"],
      [stack.alpha.post("/v1/batches", { model: "iris", version: "9", items: [item] }), "/version"],
      [ndjson("model=nope"), "/query/model"],
      [ndjson("model=iris&version=9"), "/query/version"],
    ];
    for (const [send, path] of cases) {
      const res = await send;
      expectProblem(res, 404, "not_found");
      expect(res.body.errors).toEqual([{ path, message: expect.any(String) }]);
    }
  });

  it("a bad Idempotency-Key names /headers/idempotency-key; a cursor this API did not return names /query/cursor", async () => {
    const key = "k".repeat(256);
    const job = await refused(() => stack.alpha.post("/v1/jobs", irisJob(), { "idempotency-key": key }));
    const items = [{ inputs: irisJob().inputs }];
    const batch = await stack.alpha.post("/v1/batches", { model: "iris", items }, { "idempotency-key": key });
    for (const res of [job, batch]) {
      expectProblem(res, 400, "invalid_idempotency_key");
      expect(res.body.errors).toEqual([{ path: "/headers/idempotency-key", message: expect.any(String) }]);
    }
    const batchId = crypto.randomUUID();
    for (const query of ["cursor=not-a-cursor", `batchId=${batchId}&cursor=not-a-cursor`]) {
      const res = await stack.alpha.get(`/v1/jobs?${query}`);
      expectProblem(res, 400, "invalid_cursor");
      expect(res.body.errors).toEqual([{ path: "/query/cursor", message: expect.any(String) }]);
    }
  });

  it.each([
    ["wrong tensor name", { name: "petals", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }, "/inputs/0/name"],
    [
      "wrong datatype",
      { name: "features", datatype: "INT32", shape: [1, 4], data: [1, 2, 3, 4] },
      "/inputs/0/datatype",
    ],
    ["wrong rank", { name: "features", datatype: "FP32", shape: [4], data: [1, 2, 3, 4] }, "/inputs/0/shape"],
    [
      "wrong fixed dimension",
      { name: "features", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] },
      "/inputs/0/shape/1",
    ],
    ["element count", { name: "features", datatype: "FP32", shape: [2, 4], data: [1, 2, 3, 4] }, "/inputs/0/data"],
    ["element type", { name: "features", datatype: "FP32", shape: [1, 4], data: [1, "x", 3, 4] }, "/inputs/0/data/1"],
    [
      "ragged nested data",
      {
        name: "features",
        datatype: "FP32",
        shape: [2, 4],
        data: [
          [1, 2, 3, 4],
          [1, 2],
        ],
      },
      "/inputs/0/data",
    ],
  ])("%s: 422 with the path of the fault", async (_label, tensor, path) => {
    const res = await refused(() => stack.alpha.post("/v1/jobs", { model: "iris", inputs: [tensor] }));
    expectProblem(res, 422, "validation_failed");
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it("a missing input and an unknown output are both named", async () => {
    const res = await refused(() =>
      stack.alpha.post("/v1/jobs", {
        model: "lookup",
        inputs: [{ name: "other", datatype: "INT64", shape: [1, 1], data: [0] }],
        outputs: [{ name: "nope" }],
      }),
    );
    expectProblem(res, 422, "validation_failed");
    const paths = res.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(["/inputs/0/name", "/inputs", "/outputs/0/name"]));
  });

  it("schema faults name the field", async () => {
    const res = await refused(() => stack.alpha.post("/v1/jobs", { model: 7, inputs: [], priority: "urgent" }));
    expectProblem(res, 422, "validation_failed");
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(["/model", "/inputs", "/priority"]),
    );
  });

  it("body over the limit: 413", async () => {
    const rows = Array.from({ length: 5000 }, () => IRIS_SAMPLES.setosa);
    const res = await refused(() => stack.alpha.post("/v1/jobs", irisJob(rows)));
    expectProblem(res, 413, "body_too_large");
  });

  it("missing or invalid key: 401", async () => {
    expectProblem(await refused(() => stack.anonymous.post("/v1/jobs", irisJob())), 401, "missing_api_key");
    expectProblem(
      await refused(() => stack.alpha.withKey("il_not-a-real-key").post("/v1/jobs", irisJob())),
      401,
      "invalid_api_key",
    );
    expectProblem(await stack.alpha.withKey("il_not-a-real-key").get("/v1/jobs"), 401, "invalid_api_key");
  });

  it("a good request is accepted and stored (the checks above are not blanket refusals, and the count sees a stored job)", async () => {
    const before = await jobCount();
    const res = await stack.alpha.post("/v1/jobs", irisJob());
    expect(res.status).toBe(202);
    expect(await jobCount()).toBe(before + 1);
  });
});
