import http from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Database } from "@inferline/db";
import { irisInput, IRIS_SAMPLES, sleepUntil, type ApiClient, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { kernelBufferBytes, stalledGet } from "./support/stalled-reader.ts";
import { apiMetric } from "./support/raw-http.ts";

// Bounds of GET /v1/batches/:id/results: streams per tenant and per process, a page's bytes, and
// a client that stops reading. No worker: results are written into the chunks by the test.
const PAGE_BYTES = 128 * 1024;
const IDLE_MS = 1000;
let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({
    worker: false,
    api: {
      MAX_RESULT_STREAMS: "2",
      MAX_RESULT_STREAMS_PER_TENANT: "1",
      RESULT_STREAM_PAGE_BYTES: String(PAGE_BYTES),
      RESULT_STREAM_IDLE_MS: String(IDLE_MS),
    },
  });
  db = new Database(stack.db.url, { poolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

/** A value of the API's /metrics (an unlabelled series). */
const metric = (name: string) => apiMetric(stack.api.url, name);

/** A batch of `items` items whose every result is `resultBytes` bytes of JSON (written straight into its chunks). */
async function batchWithResults(client: ApiClient, items: number, resultBytes: number): Promise<string> {
  const line = JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] });
  const body = `${line}\n`.repeat(items);
  const created = await client.request("POST", "/v1/batches?model=iris", {
    body,
    headers: { "content-type": "application/x-ndjson" },
  });
  expect(created.status).toBe(202);
  await db.pool.query(
    `update batch_chunks set statuses = array_fill('succeeded'::text, array[size]),
       results = (select json_agg(json_build_object('pad', repeat('x', $2::int - 12), 'i', 0)) from generate_series(1, size))
     where "batchId" = $1`,
    [created.body.id, resultBytes],
  );
  return created.body.id as string;
}

function expectRefused(res: HttpResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
  expect(res.body.code).toBe(code);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("batch results streams", () => {
  it("a page holds at most RESULT_STREAM_PAGE_BYTES of results: a chunk of 2 MB is written in pieces", async () => {
    const id = await batchWithResults(stack.alpha, 512, 4000);
    const write = vi.spyOn(http.ServerResponse.prototype, "write");
    let full: HttpResponse;
    let writes: number[];
    try {
      full = await stack.alpha.get(`/v1/batches/${id}/results`);
      // The size of every write of the stream's response (read before restoring, which forgets them).
      const ofStream = (i: number) => (write.mock.contexts[i] as http.ServerResponse).req.url?.endsWith("/results");
      writes = write.mock.calls.filter((_, i) => ofStream(i)).map(([chunk]) => Buffer.byteLength(chunk as string));
    } finally {
      write.mockRestore();
    }
    expect(full.status).toBe(200);
    const lines = full.text.trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual(
      Array.from({ length: 512 }, (_, i) => i),
    );
    expect(JSON.parse(lines[511]!)).toMatchObject({ status: "succeeded", result: { i: 0 } });
    // Every write of the stream is one page: its results (at most the budget) and their lines' own fields.
    expect(writes.reduce((n, b) => n + b, 0)).toBe(Buffer.byteLength(full.text));
    expect(writes.length).toBeGreaterThanOrEqual(16);
    expect(Math.max(...writes)).toBeLessThan(PAGE_BYTES + 32 * 200);
  });

  it("a client that stops reading is cut off after the idle time, freeing its slot; meanwhile its tenant is at its cap", async () => {
    const alphaBatch = await batchWithResults(stack.alpha, 1536, 8000);
    const betaBatch = await batchWithResults(stack.beta, 1536, 8000);
    const small = await batchWithResults(stack.beta, 3, 100);
    expect(1536 * 8000).toBeGreaterThan(2 * kernelBufferBytes());
    const aborted = await metric("inferline_api_batch_result_streams_aborted_total");

    const stalled = await stalledGet(stack.api.url, `/v1/batches/${alphaBatch}/results`, stack.alpha.apiKey!);
    expect(stalled.head).toMatch(/^HTTP\/1\.1 200/);
    // Alpha is at its cap of one stream; beta still reads one.
    expectRefused(await stack.alpha.get(`/v1/batches/${alphaBatch}/results`), 429, "too_many_result_streams");
    const betaRead = await stack.beta.get(`/v1/batches/${small}/results`);
    expect(betaRead.status).toBe(200);
    expect(betaRead.text.trimEnd().split("\n")).toHaveLength(3);
    // With beta stalled too, the process is at its cap of two: a third tenant waits.
    const betaStalled = await stalledGet(stack.api.url, `/v1/batches/${betaBatch}/results`, stack.beta.apiKey!);
    expect(betaStalled.head).toMatch(/^HTTP\/1\.1 200/);
    const gamma = stack.alpha.withKey(await stack.createKey("gamma"));
    expectRefused(await gamma.get(`/v1/batches/${small}/results`), 503, "result_streams_busy");

    // Neither client reads: after the idle time both streams are closed, and alpha streams again.
    const open = () => metric("inferline_api_batch_result_streams");
    await sleepUntil(async () => (await open()) === 0, {
      timeoutMs: 20_000,
      message: "the stalled streams were never closed",
    });
    expect(await metric("inferline_api_batch_result_streams_aborted_total")).toBe(aborted + 2);
    const again = await stack.alpha.get(`/v1/batches/${alphaBatch}/results`);
    expect(again.status).toBe(200);
    const whole = Buffer.byteLength(again.text);
    // What the stalled client still gets is what was buffered before the close: a cut stream.
    for (const s of [stalled, betaStalled]) expect(await s.readToEnd()).toBeLessThan(whole);
  });
});
