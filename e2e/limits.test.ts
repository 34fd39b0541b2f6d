import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisJob } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// No worker, so queued jobs stay queued and the depth only grows.
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false, api: { MAX_QUEUE_DEPTH: "3", RATE_LIMIT_PER_SECOND: "20" } });
});
afterAll(async () => {
  await stack?.close();
});

describe("limits", () => {
  it("a model's queue over its depth answers 503 with Retry-After, and stores nothing", async () => {
    // A tenant of its own, so that its job list holds exactly what this test submitted.
    const tenant = stack.alpha.withKey(await stack.createKey("filler"));
    // Each job is queued work of its own: the result cache and its single flight are bypassed.
    const queued = irisJob(undefined, { cache: "bypass" });
    for (let i = 0; i < 3; i++) expect((await tenant.post("/v1/jobs", queued)).status).toBe(202);
    const res = await tenant.post("/v1/jobs", queued);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("queue_full");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await tenant.get("/v1/jobs")).body.jobs).toHaveLength(3);
  });

  it("a key over its rate answers 429 with Retry-After; another tenant is unaffected", async () => {
    const tenant = stack.alpha.withKey(await stack.createKey("chatty"));
    // A burst of 60 takes well under a second, so it meets at most two one-second windows of 20.
    const statuses = await Promise.all(Array.from({ length: 60 }, () => tenant.get("/v1/models")));
    const limited = statuses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(20);
    expect(statuses.filter((r) => r.status === 200).length).toBeLessThanOrEqual(40);
    expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.body.code).toBe("rate_limited");
    expect((await stack.beta.get("/v1/models")).status).toBe(200);
  });
});
