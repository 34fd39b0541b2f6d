import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyModelRepository, LOOKUP_TABLE, LOOKUP_TABLE_V2, sleepUntil } from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";
import { startStack, testLogger, type TestStack } from "./support/stack.ts";

// A rolling deploy that adds version 2 of `lookup-cached`: the API knows both versions, one worker
// serves both, another (not yet redeployed) only version 1. Every job of version 2 must reach the
// worker that serves it, or wait for one; none fails because the other worker lacks the version.

let stack: TestStack;
let lacking: { dir: string; remove(): void };
let older: RunningWorker | undefined;

const WORKER_MODELS = "lookup-cached";

beforeAll(async () => {
  stack = await startStack({ worker: false, cachedModels: true });
  lacking = copyModelRepository(stack.modelsDir);
  const file = path.join(lacking.dir, "lookup-cached", "model.json");
  const manifest = JSON.parse(fs.readFileSync(file, "utf8")) as { versions: Array<{ version: string }> };
  fs.writeFileSync(file, JSON.stringify({ ...manifest, versions: manifest.versions.filter((v) => v.version === "1") }));
});
afterAll(async () => {
  await older?.close();
  await stack?.close();
  lacking?.remove();
});

/** A job of `lookup-cached` at `version` that runs whatever the cache holds. */
const lookup = (version: string, index: number) => ({
  model: "lookup-cached",
  version,
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
  cache: "off",
});

async function submit(body: unknown): Promise<string> {
  const res = await stack.alpha.post("/v1/jobs", body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

async function settled(id: string, timeoutMs = 20_000) {
  return sleepUntil(
    async () => {
      const job = (await stack.alpha.get(`/v1/jobs/${id}?wait=5`)).body;
      return ["succeeded", "failed", "canceled", "expired"].includes(job.status) ? job : undefined;
    },
    { timeoutMs, message: `job ${id} never ended` },
  );
}

const startOlder = async () =>
  (older = await startWorker(
    loadWorkerEnv({ ...stack.workerEnv, MODELS_DIR: lacking.dir, WORKER_MODELS }),
    testLogger,
  ));

describe("a worker that lacks a version of a model", () => {
  it("leaves that version's jobs and batch chunks queued until a worker that serves it starts", async () => {
    await startOlder();
    const v2 = await submit(lookup("2", 1));
    const batch = await stack.alpha.post("/v1/batches", {
      model: "lookup-cached",
      version: "2",
      items: [0, 1, 2].map((i) => ({ inputs: lookup("2", i).inputs })),
    });
    expect(batch.status).toBe(202);
    // Work of version 1 submitted after them runs on the older worker: by then it has passed over version 2's.
    const v1 = await submit(lookup("1", 2));
    expect(await settled(v1)).toMatchObject({
      status: "succeeded",
      result: { model_version: "1", outputs: [{ data: LOOKUP_TABLE[2] }] },
    });
    expect((await stack.alpha.get(`/v1/jobs/${v2}`)).body).toMatchObject({ status: "queued", attempts: 0 });
    expect((await stack.alpha.get(`/v1/batches/${batch.body.id}`)).body).toMatchObject({
      status: "queued",
      counts: { queued: 3 },
    });

    await stack.startWorker({ WORKER_MODELS });
    expect(await settled(v2)).toMatchObject({
      status: "succeeded",
      attempts: 1,
      result: { model_version: "2", outputs: [{ data: LOOKUP_TABLE_V2[1] }] },
    });
    const lines = await sleepUntil(
      async () => {
        const results = await stack.alpha.get(`/v1/batches/${batch.body.id}/results`);
        const parsed = results.text
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l));
        return parsed.every((l) => l.status === "succeeded") ? parsed : undefined;
      },
      { message: "the batch of version 2 never finished" },
    );
    expect(lines.map((l) => l.result.outputs[0].data)).toEqual(LOOKUP_TABLE_V2);
  });

  it("shares version 1 with the worker that serves both, which runs every job of version 2", async () => {
    if (!older) await startOlder();
    if (!stack.worker) await stack.startWorker({ WORKER_MODELS });
    // One at a time, so that each job has a queue entry of its own for either worker to take.
    const jobs: Array<{ id: string; version: string; index: number }> = [];
    for (let k = 0; k < 24; k++) {
      const version = k % 2 === 0 ? "2" : "1";
      jobs.push({ id: await submit(lookup(version, k % 3)), version, index: k % 3 });
    }
    const ended = await Promise.all(jobs.map(async (j) => ({ ...j, job: await settled(j.id) })));
    for (const { version, index, job } of ended) {
      expect(job.error?.code, `job of version ${version}`).toBeUndefined();
      expect(job).toMatchObject({
        status: "succeeded",
        result: {
          model_version: version,
          outputs: [{ data: (version === "2" ? LOOKUP_TABLE_V2 : LOOKUP_TABLE)[index] }],
        },
      });
    }
  });
});
