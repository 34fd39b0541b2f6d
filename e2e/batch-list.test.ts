import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient, irisInput, IRIS_SAMPLES, sleepUntil, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// GET /v1/batches: a tenant's batches, newest first, by cursor, filtered by status and model.

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(async () => {
  await stack?.close();
});

async function createBatch(client: ApiClient, model = "iris"): Promise<string> {
  const items =
    model === "iris"
      ? [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }]
      : [{ inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [1] }] }];
  const created = await client.post("/v1/batches", { model, items, cache: "bypass" });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  return created.body.id as string;
}

/** Every batch id a listing yields, following `nextCursor` to the end. */
async function listAll(client: ApiClient, query: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res: HttpResponse = await client.get(
      `/v1/batches?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    ids.push(...res.body.batches.map((b: { id: string }) => b.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  return ids;
}

describe("GET /v1/batches", () => {
  it("pages the caller's batches newest first by cursor; another tenant sees none of them", async () => {
    const alpha = new ApiClient(stack.api.url, await stack.createKey("list-pages"));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createBatch(alpha));
    const first = await alpha.get("/v1/batches?limit=2");
    expect(first.body.batches).toHaveLength(2);
    expect(first.body.batches[0]).toEqual((await alpha.get(`/v1/batches/${ids[4]}`)).body);
    expect(await listAll(alpha, "limit=2")).toEqual([...ids].reverse());
    expect(await listAll(stack.beta, "limit=100")).not.toEqual(expect.arrayContaining([ids[0]]));
  });

  it("filters by status and by model", async () => {
    const client = new ApiClient(stack.api.url, await stack.createKey("list-filters"));
    const canceled = await createBatch(client);
    expect((await client.post(`/v1/batches/${canceled}/cancel`, {})).status).toBe(200);
    const queued = await createBatch(client);
    const lookup = await createBatch(client, "lookup");
    await stack.startWorker();
    try {
      const completed = await createBatch(client);
      await sleepUntil(async () => (await client.get(`/v1/batches/${completed}?wait=5`)).body.status === "completed", {
        message: "the batch to complete",
      });
      await sleepUntil(async () => (await listAll(client, "status=queued")).length === 0, {
        message: "every queued batch to run",
      });
      expect(await listAll(client, "status=canceled")).toEqual([canceled]);
      expect(await listAll(client, "model=lookup")).toEqual([lookup]);
      expect(await listAll(client, "model=iris&status=completed")).toEqual([completed, queued]);
    } finally {
      await stack.stopWorker();
    }
  });

  it("refuses an unknown status or a limit past 100 naming the query field, and a forged cursor", async () => {
    const bad = await stack.alpha.get("/v1/batches?status=finished&limit=101");
    expect(bad.status).toBe(422);
    expect(bad.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(["/query/limit", "/query/status"]);
    const forged = await stack.alpha.get("/v1/batches?cursor=bm90LWEtY3Vyc29y");
    expect(forged.status).toBe(400);
    expect(forged.body.errors[0].path).toBe("/query/cursor");
  });
});
