import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisJob, irisInput, IRIS_SAMPLES, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { apiMetric, openPost } from "./support/raw-http.ts";

/**
 * Admission control at the door: past MAX_REQUESTS_IN_FLIGHT a request is answered 503
 * `overloaded` with Retry-After before anything else is done for it (even before its key is
 * read), probes still answer, waiting long-polls do not count, and the door opens again as soon as
 * work in flight ends.
 */

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({ worker: false, api: { MAX_REQUESTS_IN_FLIGHT: "2", MAX_BATCH_UPLOADS_PER_TENANT: "4" } });
});
afterAll(async () => {
  await stack?.close();
});

/** A batch upload that sends one line and then holds its request open: a request in flight until end(). */
function heldUpload(key: string): { end(): void; answered: Promise<number> } {
  const url = new URL(`${stack.api.url}/v1/batches?model=iris`);
  const { req, answer } = openPost(url, {
    authorization: `Bearer ${key}`,
    "content-type": "application/x-ndjson",
    "transfer-encoding": "chunked",
  });
  req.write(`${JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })}\n`);
  return { end: () => req.end(), answered: answer.then((a) => a.status) };
}

const inFlight = () => apiMetric(stack.api.url, "inferline_api_requests_in_flight");

describe("the door", () => {
  it("refuses past MAX_REQUESTS_IN_FLIGHT with 503 overloaded and Retry-After, before authentication; probes pass; it opens again when work ends", async () => {
    const uploads = [heldUpload(stack.alpha.apiKey!), heldUpload(stack.alpha.apiKey!)];
    try {
      await sleepUntil(async () => (await inFlight()) === 2, { timeoutMs: 10_000, message: "two uploads in flight" });
      const refused = await stack.anonymous.post("/v1/jobs", irisJob());
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(refused.body).toMatchObject({ status: 503, code: "overloaded" });
      expect((await stack.alpha.get("/v1/models")).body.code).toBe("overloaded");
      expect((await stack.anonymous.get("/healthz")).status).toBe(200);
      expect((await stack.anonymous.get("/readyz")).status).toBe(200);
      const metrics = await stack.anonymous.get("/metrics");
      expect(Number(/^inferline_api_requests_overloaded_total (\d+)/m.exec(metrics.text)?.[1])).toBeGreaterThanOrEqual(
        2,
      );
    } finally {
      for (const u of uploads) u.end();
    }
    expect(await Promise.all(uploads.map((u) => u.answered))).toEqual([202, 202]);
    expect((await stack.alpha.post("/v1/jobs", irisJob())).status).toBe(202);
  });

  it("does not count long-polls while they wait: a process full of waiters still takes submits", async () => {
    const job = (await stack.alpha.post("/v1/jobs", irisJob())).body as { id: string };
    const waits = [1, 2, 3].map(() => stack.alpha.get(`/v1/jobs/${job.id}?wait=3`));
    await sleepUntil(async () => (await inFlight()) === 0, {
      timeoutMs: 10_000,
      message: "the waiters left the count",
    });
    expect((await stack.alpha.post("/v1/jobs", irisJob())).status).toBe(202);
    for (const w of await Promise.all(waits)) expect(w.body.status).toBe("queued");
  });
});
