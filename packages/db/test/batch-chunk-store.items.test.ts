import crypto from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { batchItemId, type JobStatus } from "@inferline/contracts";
import { BatchChunkStore, type BatchChunkStoreOptions, type ChunkItemOutcome } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = (options?: BatchChunkStoreOptions) => new BatchChunkStore(database().pool, options);
const ok = (value: unknown) => ({ status: "succeeded" as const, resultJson: JSON.stringify(value) });
const bad = { status: "failed" as const, error: { code: "inference_error", message: "no" } };

/** A batch of chunks [2, 3, 2]: chunk 0 finished (item 1 failed), chunk 1 claimed with item 3 canceled, chunk 2 untouched. */
async function progressedBatch() {
  const tenant = await createTenant(database());
  const batch = await createBatch(database(), tenant, { sizes: [2, 3, 2], metadata: { run: "7" } });
  const [first, second] = batch.chunkIds as [string, string];
  await chunks().claim(first);
  await database().transaction((client) => chunks().finish(first, [ok({ y: 0 }), bad], client));
  await chunks().claim(second);
  await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 3, client));
  return { tenant, ...batch };
}

type PageOptions = { limit: number; status?: JobStatus };

/** Every page of a batch's items from the top, following nextBefore to the end: each page's item ids. */
async function allPages(
  tenant: string,
  batchId: string,
  total: number,
  options: PageOptions,
  store = chunks(),
): Promise<string[][]> {
  const pages: string[][] = [];
  let before: number | null = total;
  while (before !== null) {
    const page = await store.listItems(tenant, batchId, { beforeIndex: before, ...options });
    pages.push(page.jobs.map((j) => j.id));
    before = page.nextBefore;
  }
  return pages;
}

const statusesOf = (jobs: Array<{ id: string; status: JobStatus }>) => jobs.map((j) => j.status);

describe("BatchChunkStore.item", () => {
  it("shows one item as a job: its id, status, customId, result or error, and its batch's columns", async () => {
    const { tenant, batchId } = await progressedBatch();
    const succeeded = await chunks().item(tenant, batchId, 0);
    expect(succeeded).toMatchObject({
      id: batchItemId(batchId, 0),
      status: "succeeded",
      model: "iris",
      version: "1",
      priority: "low",
      attempts: 1,
      metadata: { run: "7" },
      batchId,
      customId: "c0",
      result: { y: 0 },
    });
    expect(typeof succeeded?.startedAt).toBe("string");
    expect(typeof succeeded?.completedAt).toBe("string");
    expect(await chunks().item(tenant, batchId, 1)).toMatchObject({
      status: "failed",
      error: { code: "inference_error", message: "no" },
    });
    expect(await chunks().item(tenant, batchId, 2)).toMatchObject({ status: "running", attempts: 1 });
    expect((await chunks().item(tenant, batchId, 2))?.completedAt).toBeUndefined();
    expect(await chunks().item(tenant, batchId, 3)).toMatchObject({ status: "canceled" });
    const queued = await chunks().item(tenant, batchId, 6);
    expect(queued).toMatchObject({ status: "queued", attempts: 0, customId: "c6" });
    expect(queued?.startedAt).toBeUndefined();
  });

  it("returns null for another tenant's batch, an index past the end, and an unknown batch", async () => {
    const { tenant, batchId } = await progressedBatch();
    const other = await createTenant(database());
    expect(await chunks().item(other, batchId, 0)).toBeNull();
    expect(await chunks().item(tenant, batchId, 7)).toBeNull();
    expect(await chunks().item(tenant, crypto.randomUUID(), 0)).toBeNull();
  });
  it("reads only the item's elements of its chunk, not the chunk's arrays", async () => {
    const tenant = await createTenant(database());
    const { batchId, chunkIds } = await createBatch(database(), tenant, { sizes: [40] });
    const pad = (i: number) => ({ i, pad: "x".repeat(100_000) });
    await chunks().claim(chunkIds[0]!);
    await database().transaction((client) =>
      chunks().finish(
        chunkIds[0]!,
        Array.from({ length: 40 }, (_, i) => (i === 7 ? bad : ok(pad(i)))),
        client,
      ),
    );
    const query = vi.spyOn(database().pool, "query");
    try {
      expect(await chunks().item(tenant, batchId, 12)).toMatchObject({
        status: "succeeded",
        customId: "c12",
        result: pad(12),
      });
      expect(await chunks().item(tenant, batchId, 7)).toMatchObject({ status: "failed", error: bad.error });
      // What the database sent: one item's result, not the chunk's 4 MB.
      const rowsOf = async (r: { value: unknown }) => (await (r.value as Promise<{ rows: unknown[] }>)).rows;
      const received = await Promise.all(query.mock.results.map(async (r) => JSON.stringify(await rowsOf(r)).length));
      expect(received[0]).toBeLessThan(110_000);
      expect(received[1]).toBeLessThan(10_000);
    } finally {
      query.mockRestore();
    }
  });
});

describe("BatchChunkStore.listItems", () => {
  it("lists items newest (highest index) first across chunks, below beforeIndex, a page at a time", async () => {
    const { tenant, batchId, total } = await progressedBatch();
    const all = await chunks().listItems(tenant, batchId, { beforeIndex: total, limit: 100 });
    expect(all.jobs.map((j) => j.id)).toEqual([6, 5, 4, 3, 2, 1, 0].map((i) => batchItemId(batchId, i)));
    expect(statusesOf(all.jobs)).toEqual(["queued", "queued", "running", "canceled", "running", "failed", "succeeded"]);
    expect(all.nextBefore).toBeNull();

    // Pages of 3 (the next page starts below the last item shown) never skip or repeat an item.
    const pages = await allPages(tenant, batchId, total, { limit: 3 });
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(all.jobs.map((j) => j.id));
  });

  it("filters by status, saying whether more match", async () => {
    const { tenant, batchId, total } = await progressedBatch();
    const running = await chunks().listItems(tenant, batchId, { beforeIndex: total, limit: 1, status: "running" });
    expect(running).toEqual({ jobs: [expect.objectContaining({ id: batchItemId(batchId, 4) })], nextBefore: 4 });
    expect(await chunks().listItems(tenant, batchId, { beforeIndex: total, limit: 5, status: "succeeded" })).toEqual({
      jobs: [expect.objectContaining({ id: batchItemId(batchId, 0) })],
      nextBefore: null,
    });
  });

  it("lists nothing for another tenant, for another model, or below index 0", async () => {
    const { tenant, batchId, total } = await progressedBatch();
    const other = await createTenant(database());
    const nothing = { jobs: [], nextBefore: null };
    expect(await chunks().listItems(other, batchId, { beforeIndex: total, limit: 10 })).toEqual(nothing);
    expect(await chunks().listItems(tenant, batchId, { beforeIndex: total, limit: 10, model: "other" })).toEqual(
      nothing,
    );
    expect(
      (await chunks().listItems(tenant, batchId, { beforeIndex: total, limit: 10, model: "iris" })).jobs,
    ).toHaveLength(7);
    expect(await chunks().listItems(tenant, batchId, { beforeIndex: 0, limit: 10 })).toEqual(nothing);
  });

  it("reads the statuses of at most listScanChunks chunks a page: one without matches is empty and says where to go on", async () => {
    const tenant = await createTenant(database());
    const { batchId, chunkIds, total } = await createBatch(database(), tenant, { sizes: Array(12).fill(2) });
    const finish = async (id: string, outcomes: ChunkItemOutcome[]) => {
      await chunks().claim(id);
      await database().transaction((client) => chunks().finish(id, outcomes, client));
    };
    await finish(chunkIds[0]!, [ok({ y: 0 }), bad]);
    await finish(chunkIds[5]!, [bad, bad]);
    const store = chunks({ listScanChunks: 3 });
    const failedBelow = (beforeIndex: number) =>
      store.listItems(tenant, batchId, { beforeIndex, limit: 10, status: "failed" });

    expect(await failedBelow(total)).toEqual({ jobs: [], nextBefore: 18 });
    const pages = await allPages(tenant, batchId, total, { limit: 10, status: "failed" }, store);
    expect(pages.map((p) => p.length)).toEqual([0, 0, 2, 1]);
    expect(pages.flat()).toEqual([11, 10, 1].map((i) => batchItemId(batchId, i)));
    // The last chunk scanned is the batch's first: no cursor then.
    expect(await failedBelow(6)).toEqual({
      jobs: [expect.objectContaining({ id: batchItemId(batchId, 1) })],
      nextBefore: null,
    });
  });

  it("shows the items of at most pageChunks chunks a page", async () => {
    const tenant = await createTenant(database());
    const { batchId, chunkIds, total } = await createBatch(database(), tenant, { sizes: [3, 3, 3] });
    for (const id of chunkIds) {
      await chunks().claim(id);
      await database().transaction((client) => chunks().finish(id, [ok({ y: 0 }), ok({ y: 1 }), ok({ y: 2 })], client));
    }
    const pages = await allPages(tenant, batchId, total, { limit: 10, status: "succeeded" }, chunks({ pageChunks: 1 }));
    const ids = (indexes: number[]) => indexes.map((i) => batchItemId(batchId, i));
    expect(pages).toEqual([ids([8, 7, 6]), ids([5, 4, 3]), ids([2, 1, 0])]);
    expect((await allPages(tenant, batchId, total, { limit: 10 })).map((p) => p.length)).toEqual([9]);
  });
});
