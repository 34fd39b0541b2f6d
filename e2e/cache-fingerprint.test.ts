import fs from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Database } from "@inferline/db";
import { copyModelRepository, LOOKUP_TABLE, LOOKUP_TABLE_V2, sleepUntil, testRedisUrl } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// A rolling deploy that replaces the ONNX file of `lookup-cached` version 1 without a new version:
// the API keys jobs with its file's fingerprint while a worker runs another file. The worker's
// result must not be cached under the API's key (it would be served as the other file's result);
// a worker whose file is the API's stores it.

let stack: TestStack;
let db: Database;
let redis: Redis;
let replaced: { dir: string; remove(): void };

beforeAll(async () => {
  stack = await startStack({ worker: false, cachedModels: true });
  db = new Database(stack.db.url, { poolSize: 1 });
  redis = new Redis(testRedisUrl());
  replaced = copyModelRepository(stack.modelsDir);
  // Version 1's file becomes a model with version 2's table: same manifest, another file.
  const folder = path.join(replaced.dir, "lookup-cached");
  fs.copyFileSync(path.join(folder, "lookup-v2.onnx"), path.join(folder, "lookup.onnx"));
});
afterAll(async () => {
  redis?.disconnect();
  await db?.close();
  await stack?.close();
  replaced?.remove();
});

const inputs = (index: number) => [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }];
const job = (index: number) => ({ model: "lookup-cached", version: "1", inputs: inputs(index) });
const batch = (indexes: number[]) => ({
  model: "lookup-cached",
  version: "1",
  items: indexes.map((i) => ({ inputs: inputs(i) })),
});

/** The running worker's `inferline_cache_writes_total` for lookup-cached, by outcome. */
async function writes(): Promise<Record<string, number>> {
  const metric = (await stack.worker!.metrics.registry.getMetricsAsJSON()).find(
    (m) => m.name === "inferline_cache_writes_total",
  );
  const counts: Record<string, number> = {};
  for (const v of metric?.values ?? [])
    if (v.labels.model === "lookup-cached") counts[String(v.labels.outcome)] = v.value;
  return counts;
}
const offered = async () => Object.values(await writes()).reduce((a, b) => a + b, 0);

const entryExists = async (digest: string) => (await redis.exists(`${stack.prefix}:cache:r:${digest}`)) === 1;
const flightHeld = async (digest: string) => (await redis.exists(`${stack.prefix}:cache:f:${digest}`)) === 1;

/** Runs a job to its end, then waits for the worker to have offered its result to the cache and ended its flight. */
async function runJob(index: number): Promise<{ view: Record<string, any>; digest: string }> {
  const before = await offered();
  const submit = await stack.alpha.post("/v1/jobs", job(index));
  expect(submit.status).toBe(202);
  const view = (await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=20`)).body;
  expect(view.status).toBe("succeeded");
  const digest = (await db.pool.query(`select "cacheKey" from jobs where id = $1`, [submit.body.id])).rows[0]
    .cacheKey as string;
  await sleepUntil(async () => (await offered()) > before && !(await flightHeld(digest)), {
    message: "the worker never offered the job's result to the cache",
  });
  return { view, digest };
}

/** Runs a batch to completion, then waits for the worker to have offered its items' results to the cache. */
async function runBatch(indexes: number[]): Promise<{ lines: Array<Record<string, any>>; digests: string[] }> {
  const before = await offered();
  const created = await stack.alpha.post("/v1/batches", batch(indexes));
  expect(created.status).toBe(202);
  const lines = await sleepUntil(async () => {
    const parsed = (await stack.alpha.get(`/v1/batches/${created.body.id}/results`)).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    return parsed.every((l) => l.status === "succeeded") ? parsed : undefined;
  });
  const digests = (await db.pool.query(`select "cacheKeys" from batch_chunks where "batchId" = $1`, [created.body.id]))
    .rows[0].cacheKeys as string[];
  await sleepUntil(async () => (await offered()) >= before + indexes.length, {
    message: "the worker never offered the items' results to the cache",
  });
  return { lines, digests };
}

describe("a worker whose model file differs from the API's under the same version", () => {
  it("stores neither a job's result nor a batch item's under the API's keys, and counts them as fingerprint_mismatch", async () => {
    await stack.startWorker({ WORKER_MODELS: "lookup-cached", MODELS_DIR: replaced.dir });
    onTestFinished(() => stack.stopWorker());
    const first = await runJob(1);
    expect(first.view.result.outputs[0].data).toEqual(LOOKUP_TABLE_V2[1]);
    expect(await entryExists(first.digest)).toBe(false);
    expect(await writes()).toEqual({ fingerprint_mismatch: 1 });
    // So the same request runs again rather than being answered with the other file's result.
    const again = await runJob(1);
    expect(again.view.cached).toBeUndefined();
    expect(again.view.attempts).toBe(1);

    const { lines, digests } = await runBatch([0, 2]);
    expect(lines.map((l) => l.result.outputs[0].data)).toEqual([LOOKUP_TABLE_V2[0], LOOKUP_TABLE_V2[2]]);
    for (const digest of digests) expect(await entryExists(digest)).toBe(false);
    expect(await writes()).toEqual({ fingerprint_mismatch: 4 });
  });

  it("stores them once the worker's file is the API's", async () => {
    await stack.startWorker({ WORKER_MODELS: "lookup-cached" });
    const first = await runJob(0);
    expect(first.view.result.outputs[0].data).toEqual(LOOKUP_TABLE[0]);
    expect(await entryExists(first.digest)).toBe(true);
    expect(await writes()).toEqual({ stored: 1 });
    const again = await stack.alpha.post("/v1/jobs", job(0));
    expect(again.body).toMatchObject({ status: "succeeded", cached: true, result: first.view.result });

    const { digests } = await runBatch([1, 2]);
    for (const digest of digests) expect(await entryExists(digest)).toBe(true);
    expect(await writes()).toEqual({ stored: 3 });
  });
});
