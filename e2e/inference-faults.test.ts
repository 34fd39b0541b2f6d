import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Runs that hang past the model's timeoutMs (`hang`, 500 ms) or end their inference thread
// (`crash`), end to end: the job is retried within JOB_ATTEMPTS and then fails for good with the
// run's code; the jobs and batch items that ran beside it succeed; the thread is replaced, so
// the model keeps serving.
const ATTEMPTS = 2;
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({
    faultModels: true,
    workerEnv: {
      WORKER_MODELS: "hang,crash",
      INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
      JOB_ATTEMPTS: String(ATTEMPTS),
      RETRY_BACKOFF_MS: "50",
    },
  });
});
afterAll(async () => {
  await stack?.close();
});

const input = (index: number) => [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }];

async function settle(ids: string[]) {
  return Promise.all(
    ids.map(async (id) => {
      for (;;) {
        const job = (await stack.alpha.get(`/v1/jobs/${id}?wait=20`)).body;
        if (["succeeded", "failed"].includes(job.status)) return job;
      }
    }),
  );
}

describe.each([
  ["hang", "inference_timeout"],
  ["crash", "inference_crashed"],
])("a %s run", (model, code) => {
  it(`fails its job with ${code} after ${ATTEMPTS} attempts; jobs beside it succeed`, async () => {
    const indexes = [0, 1, 2, 0, 1];
    const jobs = await Promise.all(
      indexes.map(async (i) => (await stack.alpha.post("/v1/jobs", { model, inputs: input(i) })).body),
    );
    const done = await settle(jobs.map((j) => j.id));
    done.forEach((job, k) => {
      if (indexes[k] === 2) {
        expect(job.status).toBe("failed");
        expect(job.error.code).toBe(code);
        expect(job.error.message).toContain(`after ${ATTEMPTS} attempts`);
        expect(job.attempts).toBe(ATTEMPTS);
      } else {
        expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
        expect(job.result.outputs[0].data).toEqual(LOOKUP_TABLE[indexes[k]!]);
      }
    });
    // The thread was replaced: the model still serves.
    const [after] = await settle([(await stack.alpha.post("/v1/jobs", { model, inputs: input(1) })).body.id]);
    expect(after!.status).toBe("succeeded");
  }, 60_000);

  it(`fails one batch item with ${code}; the others of its chunk succeed`, async () => {
    const indexes = [0, 2, 1, 0];
    const batch = (await stack.alpha.post("/v1/batches", { model, items: indexes.map((i) => ({ inputs: input(i) })) }))
      .body;
    for (;;) {
      const view = (await stack.alpha.get(`/v1/batches/${batch.id}?wait=20`)).body;
      if (view.status === "completed") break;
    }
    const lines = (await stack.alpha.get(`/v1/batches/${batch.id}/results`)).text
      .trim()
      .split("\n")
      .map((l: string) => JSON.parse(l));
    expect(lines.map((l) => l.status)).toEqual(["succeeded", "failed", "succeeded", "succeeded"]);
    expect(lines[1].error.code).toBe(code);
    expect(lines[2].result.outputs[0].data).toEqual(LOOKUP_TABLE[1]);
  }, 60_000);
});
