import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { irisInput, irisJob, IRIS_SAMPLES, sleepUntil, type ApiClient, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { kernelBufferBytes, stalledGet } from "./support/stalled-reader.ts";
import { apiMetric } from "./support/raw-http.ts";

// No worker: jobs and batch items stay queued until the test finishes or cancels them itself.
const CAP = 3;
let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({
    worker: false,
    api: { LONG_POLL_MAX_WAITERS_PER_TENANT: String(CAP), LONG_POLL_RECHECK_MS: "300", V2_INFER_TIMEOUT_S: "1" },
  });
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

/** A value of the API's /metrics (an unlabelled series). */
const metric = (name: string) => apiMetric(stack.api.url, name);
const waiters = () => metric("inferline_api_long_poll_waiters");

/** A GET the test can abort (ApiClient's requests cannot be). */
async function abortableGet(
  client: ApiClient,
  path: string,
  signal: AbortSignal,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${client.baseUrl}${path}`, {
    headers: { authorization: `Bearer ${client.apiKey}` },
    signal,
  });
  return { status: res.status, body: await res.json() };
}

const submit = async (client: ApiClient): Promise<string> => {
  const res = await client.post("/v1/jobs", irisJob());
  expect(res.status).toBe(202);
  return res.body.id as string;
};

function expectTooManyWaiters(res: HttpResponse) {
  expect(res.status).toBe(429);
  expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
  expect(res.body.code).toBe("too_many_waiters");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("long-poll limits", () => {
  it("a tenant at its cap of waiters gets 429 too_many_waiters; another tenant still long-polls; the cap frees when waits end", async () => {
    const held = await Promise.all(Array.from({ length: CAP }, () => submit(stack.alpha)));
    const spare = await submit(stack.alpha);
    const batch = await stack.alpha.post("/v1/batches", {
      model: "iris",
      items: [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }],
    });
    expect(batch.status).toBe(202);
    const aborts = held.map(() => new AbortController());
    const polls = held.map((id, i) =>
      abortableGet(stack.alpha, `/v1/jobs/${id}?wait=30`, aborts[i]!.signal).catch((err: Error) => err),
    );
    await sleepUntil(async () => (await waiters()) === CAP, { message: "alpha's long-polls never all waited" });

    // Short waits: without a cap they would answer 200 after 2 s, and the test would fail fast.
    expectTooManyWaiters(await stack.alpha.get(`/v1/jobs/${spare}?wait=2`));
    expectTooManyWaiters(await stack.alpha.get(`/v1/batches/${batch.body.id}?wait=2`));
    const jobsBefore = (await stack.alpha.get("/v1/jobs?limit=500")).body.jobs.length;
    const infer = await stack.alpha.post("/v2/models/iris/infer", { inputs: [irisInput([IRIS_SAMPLES.setosa])] });
    expectTooManyWaiters(infer);
    expect((await stack.alpha.get("/v1/jobs?limit=500")).body.jobs.length).toBe(jobsBefore); // refused before it submitted
    expect(await metric("inferline_api_long_poll_rejected_total")).toBe(3);
    // A read without a wait does not count against the cap.
    expect((await stack.alpha.get(`/v1/jobs/${spare}?wait=0`)).status).toBe(200);
    expect((await stack.alpha.get(`/v1/jobs/${spare}`)).status).toBe(200);

    // Another tenant's long-poll is admitted and answered when its job ends.
    const betaJob = await submit(stack.beta);
    const betaPoll = stack.beta.get(`/v1/jobs/${betaJob}?wait=30`);
    await sleepUntil(async () => (await waiters()) === CAP + 1, { message: "beta's long-poll was not admitted" });
    expect((await stack.beta.post(`/v1/jobs/${betaJob}/cancel`)).status).toBe(200);
    expect(await betaPoll).toMatchObject({ status: 200, body: { id: betaJob, status: "canceled" } });

    // A client that goes away gives its slot back, and alpha may wait again.
    aborts[0]!.abort();
    await sleepUntil(async () => (await waiters()) === CAP - 1, { message: "an aborted long-poll kept its slot" });
    const again = stack.alpha.get(`/v1/jobs/${spare}?wait=30`);
    await sleepUntil(async () => (await waiters()) === CAP, { message: "the freed slot was not reusable" });
    // An answer gives the slot back too: cancel the jobs being waited on.
    for (const id of [spare, ...held.slice(1)])
      expect((await stack.alpha.post(`/v1/jobs/${id}/cancel`)).status).toBe(200);
    expect(await again).toMatchObject({ status: 200, body: { id: spare, status: "canceled" } });
    const answered = await Promise.all(polls.slice(1));
    expect(answered.map((r) => (r as { body: { status: string } }).body.status)).toEqual(["canceled", "canceled"]);
    await sleepUntil(async () => (await waiters()) === 0, { message: "answered long-polls kept their slots" });

    // And an error: a long-poll on an unknown job answers 404 and holds nothing afterwards.
    for (let i = 0; i < CAP + 1; i++)
      expect((await stack.alpha.get(`/v1/jobs/00000000-0000-4000-8000-00000000000${i}?wait=5`)).status).toBe(404);
    await sleepUntil(async () => (await waiters()) === 0, { message: "a 404 kept its slot" });
    expect((await stack.alpha.get(`/v1/batches/${batch.body.id}?wait=0.2`)).body.status).toBe("queued");
    // v2 infer holds a slot while it waits for its job (no worker here: 504 after V2_INFER_TIMEOUT_S).
    const v2 = stack.alpha.post("/v2/models/iris/infer", { inputs: [irisInput([IRIS_SAMPLES.setosa])] });
    await sleepUntil(async () => (await waiters()) === 1, { message: "v2 infer did not count as a waiter" });
    expect((await v2).status).toBe(504);
    await sleepUntil(async () => (await waiters()) === 0, { message: "v2 infer kept its slot" });
  });

  it("a job finished in the database without any pub/sub message is answered within seconds, not at the end of the wait", async () => {
    const id = await submit(stack.alpha);
    const started = Date.now();
    const poll = stack.alpha.get(`/v1/jobs/${id}?wait=30`);
    await sleepUntil(async () => (await waiters()) === 1, { message: "the long-poll never waited" });
    // What a worker's write looks like when its "finished" message is lost.
    const result = {
      model_name: "iris",
      model_version: "1",
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [1, 3], data: [1, 0, 0] }],
    };
    const updated = await db.pool.query(
      `update jobs set status = 'succeeded', result = $2::json, attempts = 1, "startedAt" = now(), "completedAt" = now() where id = $1`,
      [id, JSON.stringify(result)],
    );
    expect(updated.rowCount).toBe(1);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error("the long-poll did not see the finished job within 15 s")), 15_000)),
    );
    const done = await Promise.race([poll, deadline]).finally(() => clearTimeout(timer));
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      id,
      status: "succeeded",
      result: { outputs: [{ name: "probabilities", data: [1, 0, 0] }] },
    });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("a results stream whose client disconnects on a full socket ends, and stops reading pages", async () => {
    // Long customIds make each result line about 300 bytes; enough lines that the response is
    // far larger than what the kernel buffers for a client that stops reading.
    const items = 60_000;
    const customId = (i: number) => `${String(i).padStart(6, "0")}-${"x".repeat(220)}`;
    const lines: string[] = [];
    const line = JSON.stringify({ customId: "@", inputs: [irisInput([IRIS_SAMPLES.setosa])] });
    for (let i = 0; i < items; i++) lines.push(line.replace("@", customId(i)));
    const body = lines.join("\n") + "\n";
    const created = await stack.alpha.request("POST", "/v1/batches?model=iris", {
      body,
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(created.status).toBe(202);
    expect(created.body.total).toBe(items);
    const responseBytes = items * (customId(0).length + 80);
    expect(responseBytes).toBeGreaterThan(2 * kernelBufferBytes());

    const { head, socket } = await stalledGet(
      stack.api.url,
      `/v1/batches/${created.body.id}/results`,
      stack.alpha.apiKey!,
    );
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(await metric("inferline_api_batch_result_streams")).toBe(1);
    socket.destroy();
    await sleepUntil(async () => (await metric("inferline_api_batch_result_streams")) === 0, {
      message: "the results handler never ended after its client left",
    });
    expect(await metric("inferline_api_batch_result_streams_aborted_total")).toBe(1);

    // A client that reads on gets every line, in order, and the stream ends normally.
    const full = await stack.alpha.get(`/v1/batches/${created.body.id}/results`);
    expect(full.status).toBe(200);
    const got = full.text.trimEnd().split("\n");
    expect(got).toHaveLength(items);
    expect(JSON.parse(got[items - 1]!)).toMatchObject({
      index: items - 1,
      customId: customId(items - 1),
      status: "queued",
    });
    expect(full.text.length).toBeGreaterThan(responseBytes);
    await sleepUntil(async () => (await metric("inferline_api_batch_result_streams")) === 0);
    expect(await metric("inferline_api_batch_result_streams_aborted_total")).toBe(1);
  });
});
