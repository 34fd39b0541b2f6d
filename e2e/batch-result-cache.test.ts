import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchItemId } from "@inferline/contracts";
import { Database } from "@inferline/db";
import { irisInput, sleepUntil, type ApiClient } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// The result cache for batch items (iris's manifest sets `cache`): a batch of items scored before
// is answered at creation, item by item, without a worker run.

let stack: TestStack;
let db: Database;
let receiver: http.Server;
let hookUrl: string;
const received: Array<{ type: string; data: { id: string } }> = [];

beforeAll(async () => {
  stack = await startStack({ api: { WEBHOOK_ALLOW_PRIVATE: "true" }, workerEnv: { WEBHOOK_ALLOW_PRIVATE: "true" } });
  db = new Database(stack.db.url, { poolSize: 2 });
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** `n` distinct iris items; `seed` makes another set (so that each test starts from misses). */
function items(n: number, seed: number, from = 0) {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      customId: `row-${i}`,
      inputs: [
        irisInput([
          [4 + seed * 10 + (i % 100) / 50, 2 + Math.floor(i / 100) / 10, 1 + (i % 7) / 3, 0.1 + (i % 11) / 10],
        ]),
      ],
    };
  });
}

async function create(client: ApiClient, body: Record<string, unknown>) {
  const res = await client.post("/v1/batches", { model: "iris", ...body });
  expect(res.status, res.text).toBe(202);
  return res.body as { id: string; status: string; total: number; counts: Record<string, number> };
}

async function completed(client: ApiClient, id: string) {
  const res = await client.get(`/v1/batches/${id}?wait=30`);
  expect(res.body.status).toBe("completed");
  return res.body;
}

async function lines(client: ApiClient, id: string): Promise<string[]> {
  const res = await client.get(`/v1/batches/${id}/results`);
  expect(res.status).toBe(200);
  return res.text.trim().split("\n");
}

/** A results line without what differs between two batches of the same items (index and jobId stay: same positions) */
const comparable = (line: string) => line.replace(/"jobId":"[^"]+"/, "").replace(',"cached":true', "");

async function dispatches(batchId: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from dispatches d join batch_chunks c on c.id = d.id where c."batchId" = $1`,
    [batchId],
  );
  return rows[0]!.n;
}

async function lookups(outcome: string): Promise<number> {
  const text = (await stack.anonymous.get("/metrics")).text;
  const m = text.match(new RegExp(`^inferline_cache_lookups_total\\{model="iris",outcome="${outcome}"\\} (\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
}

/** Items the current worker finished (a fresh worker's counter: its runs). */
async function workerRuns(): Promise<number> {
  const metric = await stack.worker!.metrics.itemsFinished.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
}

/** A batch reads completed at its commit; the worker counts its run items a moment after it. */
async function expectRuns(n: number): Promise<void> {
  await sleepUntil(async () => (await workerRuns()) >= n, { timeoutMs: 10_000, message: `${n} runs never counted` });
  expect(await workerRuns()).toBe(n);
}

async function cacheWrites(): Promise<number> {
  const text = await stack.worker!.metrics.registry.metrics();
  const m = text.match(/^inferline_cache_writes_total\{model="iris",outcome="stored"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

describe("batches and the result cache", () => {
  it("a batch re-run is all hits: completed at creation with no worker, no queue entry, its results identical apart from `cached`", async () => {
    const body = { items: items(700, 0), metadata: { run: "first" } };
    const writes = await cacheWrites();
    const first = await create(stack.alpha, body);
    await completed(stack.alpha, first.id);
    const firstLines = await lines(stack.alpha, first.id);
    expect(firstLines.every((l) => !l.includes('"cached"'))).toBe(true);
    // Results are stored after the chunk's commit: wait until the worker counted both chunks' writes.
    await sleepUntil(async () => (await cacheWrites()) - writes >= 700, {
      timeoutMs: 10_000,
      message: "results never stored",
    });

    await stack.stopWorker();
    const hitsBefore = await lookups("hit");
    const again = await create(stack.alpha, { ...body, webhook: { url: hookUrl, events: ["batch.completed"] } });
    // Answered in the 202 itself: nothing ran, nothing is queued.
    expect(again).toMatchObject({
      status: "completed",
      total: 700,
      counts: { queued: 0, running: 0, succeeded: 700, failed: 0 },
    });
    expect(await dispatches(again.id)).toBe(0);
    expect((await stack.alpha.get(`/v1/batches/${again.id}?wait=30`)).body.status).toBe("completed");
    const againLines = await lines(stack.alpha, again.id);
    expect(againLines.every((l) => l.endsWith(',"cached":true}'))).toBe(true);
    expect(againLines.map(comparable)).toEqual(firstLines.map(comparable));
    expect((await lookups("hit")) - hitsBefore).toBe(700);

    // Each item is a job that says so; the list shows it too.
    const item = await stack.alpha.get(`/v1/jobs/${batchItemId(again.id, 5)}`);
    expect(item.body).toMatchObject({
      status: "succeeded",
      cached: true,
      attempts: 0,
      customId: "row-5",
      batchId: again.id,
    });
    const firstItem = await stack.alpha.get(`/v1/jobs/${batchItemId(first.id, 5)}`);
    expect(firstItem.body.cached).toBeUndefined();
    expect(item.body.result).toEqual(firstItem.body.result);
    const listed = await stack.alpha.get(`/v1/jobs?batchId=${again.id}&limit=3`);
    expect(listed.body.jobs.map((j: { cached?: boolean }) => j.cached)).toEqual([true, true, true]);

    // batch.completed was recorded with the creation, and is delivered once a worker (its webhook worker) runs.
    await stack.startWorker();
    const event = await sleepUntil(
      async () => received.find((e) => e.type === "batch.completed" && e.data.id === again.id),
      {
        timeoutMs: 15_000,
        message: "batch.completed never delivered",
      },
    );
    expect(event.data).toMatchObject({ status: "completed", counts: { succeeded: 700 } });
    // The fresh worker ran nothing of it.
    expect(await workerRuns()).toBe(0);
  });

  it("a partly cached batch runs only its misses", async () => {
    const seen = items(600, 1);
    const writes = await cacheWrites();
    await completed(stack.alpha, (await create(stack.alpha, { items: seen })).id);
    await sleepUntil(async () => (await cacheWrites()) - writes >= 600, {
      timeoutMs: 10_000,
      message: "results never stored",
    });
    await stack.stopWorker();
    // Items 0-599 were scored; 600-799 are new. The first chunk (0-511) is all hits, the second mixed.
    const mixed = await create(stack.alpha, { items: items(800, 1) });
    expect(mixed.status).toBe("running");
    expect(mixed.counts).toMatchObject({ queued: 200, succeeded: 600 });
    expect(await dispatches(mixed.id)).toBe(1);
    await stack.startWorker();
    await completed(stack.alpha, mixed.id);
    await expectRuns(200);
    const out = (await lines(stack.alpha, mixed.id)).map((l) => JSON.parse(l));
    expect(out.map((l) => l.cached === true)).toEqual(out.map((_, i) => i < 600));
    expect(out.every((l) => l.status === "succeeded")).toBe(true);
    const ran = await stack.alpha.get(`/v1/jobs/${batchItemId(mixed.id, 700)}`);
    expect(ran.body.cached).toBeUndefined();
    expect(ran.body.attempts).toBe(1);
  });

  it('cache: "bypass" runs every item (body and NDJSON query), and the runs refresh the entries', async () => {
    const body = { items: items(300, 2) };
    const writes = await cacheWrites();
    await completed(stack.alpha, (await create(stack.alpha, body)).id);
    await sleepUntil(async () => (await cacheWrites()) - writes >= 300, {
      timeoutMs: 10_000,
      message: "results never stored",
    });
    await stack.stopWorker();
    const bypassBefore = await lookups("bypass");
    const bypassed = await create(stack.alpha, { ...body, cache: "bypass" });
    expect(bypassed).toMatchObject({ status: "queued", counts: { queued: 300, succeeded: 0 } });
    const ndjson = await stack.alpha.request("POST", "/v1/batches?model=iris&cache=bypass", {
      body: body.items.map((i) => JSON.stringify(i)).join("\n"),
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(ndjson.status).toBe(202);
    expect(ndjson.body).toMatchObject({ status: "queued", counts: { queued: 300 } });
    expect((await lookups("bypass")) - bypassBefore).toBe(600);
    const bad = await stack.alpha.post("/v1/batches", { model: "iris", cache: "only", items: body.items.slice(0, 1) });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.body.errors)).toContain("/cache");

    await stack.startWorker();
    await completed(stack.alpha, bypassed.id);
    await completed(stack.alpha, ndjson.body.id);
    await expectRuns(600);
    expect((await lines(stack.alpha, bypassed.id)).some((l) => l.includes('"cached"'))).toBe(false);
    // The bypassing runs stored their results again.
    await sleepUntil(async () => (await cacheWrites()) >= 600, {
      timeoutMs: 10_000,
      message: "bypass results never stored",
    });
  });

  it("another tenant's batch of the same items misses and runs", async () => {
    const body = { items: items(100, 3) };
    const writes = await cacheWrites();
    await completed(stack.alpha, (await create(stack.alpha, body)).id);
    await sleepUntil(async () => (await cacheWrites()) - writes >= 100, {
      timeoutMs: 10_000,
      message: "results never stored",
    });
    await stack.stopWorker();
    // Alpha's re-run hits (so the entries are there), beta's identical batch does not.
    expect((await create(stack.alpha, body)).status).toBe("completed");
    const beta = await create(stack.beta, body);
    expect(beta).toMatchObject({ status: "queued", counts: { queued: 100, succeeded: 0 } });
    await stack.startWorker();
    await completed(stack.beta, beta.id);
    await expectRuns(100);
    expect((await lines(stack.beta, beta.id)).some((l) => l.includes('"cached"'))).toBe(false);
  });
});
