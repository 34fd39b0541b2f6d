import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchItemId } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database } from "@inferline/db";
import { deletePrefix, IRIS_SAMPLES, irisInput, sleepUntil, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack();
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const irisItems = (n: number, customId?: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => ({
    ...(customId ? { customId: customId(i) } : {}),
    inputs: [irisInput([IRIS_SAMPLES.setosa])],
  }));

async function createBatch(n: number, customId?: (i: number) => string) {
  // These tests are about items running (cancels racing a worker, the reconciler): bypass iris's
  // result cache, which would answer identical items scored by an earlier test at creation.
  const created = await stack.alpha.post("/v1/batches", {
    model: "iris",
    items: irisItems(n, customId),
    cache: "bypass",
  });
  expect(created.status).toBe(202);
  return created.body as { id: string; total: number };
}

async function completed(id: string) {
  return sleepUntil(
    async () => {
      const b = (await stack.alpha.get(`/v1/batches/${id}`)).body;
      return b.status === "completed" || b.status === "canceled" ? b : undefined;
    },
    { timeoutMs: 25_000, message: `batch ${id} never completed` },
  );
}

async function resultLines(id: string) {
  const res = await stack.alpha.get(`/v1/batches/${id}/results`);
  expect(res.status).toBe(200);
  return res.text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

describe("batch items as jobs", () => {
  it("an item canceled on its own stays canceled while the rest of its batch runs", async () => {
    await stack.stopWorker();
    let batch!: { id: string };
    let itemId!: string;
    try {
      batch = await createBatch(10);
      itemId = (await resultLines(batch.id))[3].jobId;
      expect(itemId).toBe(batchItemId(batch.id, 3));
      const canceled = await stack.alpha.post(`/v1/jobs/${itemId}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ id: itemId, batchId: batch.id, status: "canceled" });
      expect((await stack.alpha.post(`/v1/jobs/${itemId}/cancel`)).status).toBe(409);
      expect((await stack.beta.get(`/v1/jobs/${itemId}`)).status).toBe(404);
      expect((await stack.beta.post(`/v1/jobs/${itemId}/cancel`)).status).toBe(404);
      // The neighbours are untouched: still queued.
      expect((await stack.alpha.get(`/v1/jobs/${batchItemId(batch.id, 2)}`)).body.status).toBe("queued");
      // One item canceled is no progress: the batch is still queued.
      expect((await stack.alpha.get(`/v1/batches/${batch.id}`)).body).toMatchObject({
        status: "queued",
        counts: { queued: 9, canceled: 1 },
      });
    } finally {
      await stack.startWorker();
    }
    const done = await completed(batch.id);
    expect(done.status).toBe("completed");
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 9, failed: 0, canceled: 1, expired: 0 });
    const lines = await resultLines(batch.id);
    expect(lines.map((l) => l.status)).toEqual(lines.map((_, i) => (i === 3 ? "canceled" : "succeeded")));
    expect(lines[3].result).toBeUndefined();
    expect(lines[2].result.classifications[0].label).toBe("setosa");
    const item = await stack.alpha.get(`/v1/jobs/${itemId}`);
    expect(item.status).toBe(200);
    expect(item.body).toMatchObject({ id: itemId, batchId: batch.id, status: "canceled" });
    expect(item.body.result).toBeUndefined();
  });

  it("a long-poll on a batch item returns when its chunk finishes", async () => {
    await stack.stopWorker();
    let waiting: Promise<HttpResponse> | undefined;
    let started: number;
    try {
      const batch = await createBatch(20);
      const itemId = batchItemId(batch.id, 7);
      // Only start the worker once the API holds the request, so the poll must be woken.
      const server = stack.api.server;
      const arrived = new Promise<void>((resolve) => {
        const seen = (req: { url?: string }) => {
          if (!req.url?.includes(itemId)) return;
          server.off("request", seen);
          resolve();
        };
        server.on("request", seen);
      });
      waiting = stack.alpha.get(`/v1/jobs/${itemId}?wait=30`);
      await arrived;
    } finally {
      started = Date.now();
      await stack.startWorker();
    }
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded" });
    expect(res.body.result.classifications[0].label).toBe("setosa");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("a batch larger than a chunk keeps submission order, and listing its items pages through each exactly once", async () => {
    const n = 1100; // BATCH_CHUNK_SIZE is 512: chunks of 512, 512 and 76
    const batch = await createBatch(n, (i) => `c-${i}`);
    expect(batch.total).toBe(n);
    expect((await completed(batch.id)).counts).toMatchObject({ succeeded: n, failed: 0, canceled: 0 });
    const lines = await resultLines(batch.id);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(lines.map((l) => l.customId)).toEqual(Array.from({ length: n }, (_, i) => `c-${i}`));
    expect(lines.every((l) => l.status === "succeeded")).toBe(true);
    const jobIds: string[] = lines.map((l) => l.jobId);
    expect(new Set(jobIds).size).toBe(n);

    const sizes: number[] = [];
    const listed: Array<{ id: string; customId?: string }> = [];
    let cursor: string | null = null;
    do {
      const page: any = await stack.alpha.get(
        `/v1/jobs?batchId=${batch.id}&limit=500${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(page.status).toBe(200);
      sizes.push(page.body.jobs.length);
      listed.push(...page.body.jobs);
      cursor = page.body.nextCursor;
    } while (cursor && sizes.length < 10);
    expect(sizes).toEqual([500, 500, 100]);
    expect(listed.map((j) => j.id)).toEqual([...jobIds].reverse());
    expect(listed[0]).toMatchObject({ batchId: batch.id, customId: "c-1099", status: "succeeded" });

    const failed = await stack.alpha.get(`/v1/jobs?batchId=${batch.id}&status=failed`);
    expect(failed.status).toBe(200);
    expect(failed.body).toEqual({ jobs: [], nextCursor: null });
    const bad = await stack.alpha.get(
      `/v1/jobs?batchId=${batch.id}&cursor=${Buffer.from("not-a-cursor").toString("base64url")}`,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("invalid_cursor");
    // Text that decodes to nothing (or a blank) is no cursor either, not "index 0".
    for (const cursor of ["!!!", "IA", Buffer.from("item:1e2").toString("base64url")]) {
      expect((await stack.alpha.get(`/v1/jobs?batchId=${batch.id}&cursor=${cursor}`)).status).toBe(400);
    }
  });

  it("a cancel that lands while a worker holds a chunk keeps the cancel, and the batch completes exactly once", async () => {
    const chunks = new BatchChunkStore(db.pool);
    const batches = new BatchStore(db.pool, db.prisma);
    await stack.stopWorker();
    try {
      const batch = await createBatch(5);
      const { rows } = await db.pool.query<{ id: string }>(`select id from batch_chunks where "batchId" = $1`, [
        batch.id,
      ]);
      expect(rows).toHaveLength(1);
      const chunkId = rows[0]!.id;
      const claimed = await chunks.claim(chunkId);
      expect(claimed?.items.every((inputs) => inputs !== null)).toBe(true);
      expect(claimed!.items).toHaveLength(5);

      const canceled = await stack.alpha.post(`/v1/batches/${batch.id}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ status: "canceled", counts: { canceled: 5, running: 0, succeeded: 0 } });

      const outcomes = claimed!.items.map(() => ({
        status: "succeeded" as const,
        resultJson: JSON.stringify({ model_name: "iris", model_version: "1", outputs: [] }),
      }));
      const finished = await db.transaction((c) => chunks.finish(chunkId, outcomes, c));
      expect(finished).toMatchObject({ batchId: batch.id, finished: 0, succeeded: 0, settlement: null });
      const row = await batches.get(claimed!.tenantId, batch.id);
      expect(row?.remaining).toBe(0);
      expect((await stack.alpha.get(`/v1/batches/${batch.id}`)).body).toMatchObject({
        status: "canceled",
        counts: { canceled: 5, succeeded: 0 },
      });
      const lines = await resultLines(batch.id);
      expect(lines.map((l) => l.status)).toEqual(Array(5).fill("canceled"));
      expect(lines.every((l) => l.result === undefined)).toBe(true);
    } finally {
      await stack.startWorker();
    }
  });

  it("a cancel that waits on a worker completing the batch answers 409 and leaves it completed", async () => {
    const chunks = new BatchChunkStore(db.pool);
    await stack.stopWorker();
    try {
      const batch = await createBatch(5);
      const chunkId = (
        await db.pool.query<{ id: string }>(`select id from batch_chunks where "batchId" = $1`, [batch.id])
      ).rows[0]!.id;
      const claimed = (await chunks.claim(chunkId))!;
      const client = await db.pool.connect();
      try {
        await client.query("begin");
        const outcomes = claimed.items.map(() => ({
          status: "succeeded" as const,
          resultJson: JSON.stringify({ model_name: "iris", model_version: "1", outputs: [] }),
        }));
        expect((await chunks.finish(chunkId, outcomes, client))?.settlement?.completed).toBe(true);
        // The cancel reads the batch as running, then blocks on the chunk this transaction holds.
        const cancel = stack.alpha.post(`/v1/batches/${batch.id}/cancel`);
        await sleepUntil(
          async () =>
            (
              await db.pool.query(
                `select 1 from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`,
              )
            ).rowCount! > 0,
          {
            message: "the cancel never waited on the lock",
          },
        );
        await client.query("commit");
        const res = await cancel;
        expect(res.status).toBe(409);
        expect(res.body.code).toBe("batch_not_cancelable");
      } finally {
        client.release();
      }
      const view = (await stack.alpha.get(`/v1/batches/${batch.id}`)).body;
      expect(view).toMatchObject({ status: "completed", counts: { succeeded: 5, canceled: 0 } });
      expect(view.canceledAt).toBeUndefined();
    } finally {
      await stack.startWorker();
    }
  });

  it("the reconciler re-enqueues a chunk whose queue entry Redis lost", async () => {
    await stack.stopWorker();
    const batch = await createBatch(600); // chunks of 512 and 88
    // Redis restarts without persistence: the chunks' queue entries are gone, the database still has them pending.
    await deletePrefix(stack.prefix);
    const worker = await stack.startWorker({ RECONCILE_AFTER_MS: "0" });
    expect((await stack.alpha.get(`/v1/batches/${batch.id}`)).body.status).toBe("queued");
    expect(await worker.reconciler.runOnce()).toBe(600);
    const done = await completed(batch.id);
    expect(done).toMatchObject({
      status: "completed",
      counts: { succeeded: 600, failed: 0, canceled: 0, queued: 0, running: 0 },
    });
    const first = (await stack.alpha.get(`/v1/jobs/${batchItemId(batch.id, 0)}`)).body;
    const last = (await stack.alpha.get(`/v1/jobs/${batchItemId(batch.id, 599)}`)).body;
    expect([first.status, first.attempts, last.status, last.attempts]).toEqual(["succeeded", 1, "succeeded", 1]);
    // Nothing left to do: a second pass finds no orphan.
    expect(await worker.reconciler.runOnce()).toBe(0);
  });
});
