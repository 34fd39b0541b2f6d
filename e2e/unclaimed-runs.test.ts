import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FlatTensor } from "@inferline/contracts";
import { Database, JobStore, type NewJob } from "@inferline/db";
import { createRedis, Dispatcher } from "@inferline/queue";
import { irisInput, irisJob, IRIS_SAMPLES, sleepUntil, testRedisUrl, type ApiClient } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// A lone small job of a model that proved fast in the worker runs from the inputs its queue entry
// carries, before any claim; its outcome is written only if it is still queued (the claim path
// handles the rest). This file checks the jobs that may and may not take that path.
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

/** A job that may run unclaimed: iris leaves the cache alone with `cache: "off"` (a job that looks it up leads a single flight, and is claimed). */
const plain = (extra: Record<string, unknown> = {}) => irisJob([IRIS_SAMPLES.setosa], { cache: "off", ...extra });

/** Session runs of iris in the worker, so far: every run of a job, claimed or not, is in one. */
async function irisRuns(): Promise<number> {
  const metric = await stack.worker!.metrics.batchSize.get();
  return metric.values
    .filter((v) => v.metricName === "inferline_batch_size_items_count" && v.labels.model === "iris")
    .reduce((n, v) => n + v.value, 0);
}

/** Jobs the worker ran without a claim, so far. */
async function unclaimed(): Promise<number> {
  const metric = await stack.worker!.metrics.unclaimedRuns.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
}

async function runOne(
  client: ApiClient,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, any>> {
  const submit = await client.request("POST", "/v1/jobs", {
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
  expect(submit.status).toBe(202);
  const done = await client.get(`/v1/jobs/${submit.body.id}?wait=20`);
  expect(done.body.status).toBe("succeeded");
  return done.body;
}

/** Runs plain jobs one at a time until one runs unclaimed (the model proved fast: 20 runs under 10 ms on average); returns that job. */
async function firstUnclaimed(): Promise<Record<string, any>> {
  for (let i = 0; i < 200; i++) {
    const seen = await unclaimed();
    const job = await runOne(stack.alpha, plain());
    if ((await unclaimed()) === seen + 1) return job;
  }
  throw new Error("no job ran unclaimed in 200");
}

describe("jobs run before their claim", () => {
  it("a fast model's lone small jobs run unclaimed once it has proved fast, with the same answer and one attempt", async () => {
    // The first runs are claimed: the model has not proved fast in this worker yet.
    const before = await unclaimed();
    const first = await runOne(stack.alpha, plain());
    expect(await unclaimed()).toBe(before);
    // The counter moves before the job's outcome is written, so before its long-poll answers.
    const later = await firstUnclaimed();
    expect(later).toMatchObject({ status: "succeeded", attempts: 1, result: first.result });
    expect(Date.parse(later.startedAt)).toBeLessThanOrEqual(Date.parse(later.completedAt));
    // What GET shows afterwards is what the long-poll answered.
    expect((await stack.alpha.get(`/v1/jobs/${later.id}`)).body).toEqual(later);
  });

  it("claims first a job that leads a single flight, has a deadline, or carries more than an entry holds", async () => {
    await firstUnclaimed(); // the model has proved fast
    const before = await unclaimed();
    const rows = Array.from({ length: 100 }, () => IRIS_SAMPLES.versicolor);
    await runOne(stack.alpha, { model: "iris", inputs: [irisInput(rows)], cache: "off" }); // 400 elements: past what an entry carries
    await runOne(stack.alpha, plain({ maxQueueSeconds: 60 }));
    await runOne(stack.alpha, plain(), { "cancel-after": "60s" });
    await runOne(stack.alpha, irisJob([[5.01, 3.3, 1.4, 0.2]])); // looks the cache up, misses, leads its flight
    expect(await unclaimed()).toBe(before);
  });
});

describe("a lone job canceled before its entry reaches the worker", () => {
  it("is never run: not before its claim, and not by the claim, which skips it", async () => {
    await firstUnclaimed(); // the model has proved fast: an entry carrying its job's inputs would run unclaimed
    const db = new Database(stack.db.url, { poolSize: 1 });
    const redis = createRedis(testRedisUrl());
    const dispatcher = new Dispatcher(redis, { prefix: stack.prefix });
    try {
      const tenantId = (await db.pool.query<{ id: string }>(`select id from tenants where name = 'alpha'`)).rows[0]!.id;
      const inputs = [irisInput([IRIS_SAMPLES.virginica]) as FlatTensor];
      const job: NewJob = {
        ...{
          id: crypto.randomUUID(),
          dispatchId: crypto.randomUUID(),
          tenantId,
          model: "iris",
          version: "1",
          priority: "normal",
          inputs,
          requestedOutputs: [],
          metadata: {},
        },
        ...{
          webhook: null,
          idempotencyKey: null,
          requestHash: null,
          queueDeadline: null,
          cancelAt: null,
          createdAt: new Date(),
        },
      };
      const store = new JobStore(db.pool, db.prisma);
      await store.insertMany([job]);
      // Its entry, as the API adds a lone small job's, is still on its way (delayed) when the cancel commits.
      const carried = { tenantId, inputs, requestedOutputs: [], cacheKey: null, traceParent: null };
      await dispatcher.enqueue([
        {
          dispatchId: job.dispatchId!,
          model: "iris",
          version: "1",
          priority: "normal",
          jobIds: [job.id],
          carried,
          delayMs: 300,
          tenantId,
        },
      ]);
      const [runs, unclaimedRuns] = [await irisRuns(), await unclaimed()];
      expect(await store.cancel(tenantId, job.id)).toBeDefined();

      const queue = dispatcher.queue("iris", "1");
      await sleepUntil(async () => ((await queue.getJobState(job.dispatchId!)) === "unknown" ? true : undefined), {
        message: "the entry was never processed",
      });
      expect(await unclaimed()).toBe(unclaimedRuns);
      expect(await irisRuns()).toBe(runs);
      expect((await stack.alpha.get(`/v1/jobs/${job.id}`)).body).toMatchObject({ status: "canceled", attempts: 0 });
    } finally {
      await dispatcher.close();
      redis.disconnect();
      await db.close();
    }
  });
});
