import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore, type ChunkItemOutcome } from "@inferline/db";
import { MAX_CHUNK_RESULT_BYTES } from "../src/batch-chunk-store.ts";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createBatch, createTenant, dispatchRow } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const ok = (value: unknown = {}): ChunkItemOutcome => ({ status: "succeeded", resultJson: JSON.stringify(value) });
const bad: ChunkItemOutcome = { status: "failed", error: { code: "inference_error", message: "no" } };
const finish = (id: string, outcomes: Array<ChunkItemOutcome | undefined>) =>
  database().transaction((client) => chunks().finish(id, outcomes, client));

describe("BatchChunkStore.finish", () => {
  it("writes each item's outcome, completes the chunk, forgets its queue entry and settles the batch", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3] });
    const id = batch.chunkIds[0]!;
    expect(await finish(id, [ok({ y: 1 }), bad, ok({ y: 3 })])).toEqual({
      batchId: batch.batchId,
      finished: 3,
      succeeded: 2,
      failed: 1,
      succeededItems: [0, 2],
      settlement: { batchId: batch.batchId, tenantId: tenant, completed: true },
    });
    const row = await chunkRow(database(), id);
    expect(row).toMatchObject({
      statuses: ["succeeded", "failed", "succeeded"],
      results: [{ y: 1 }, null, { y: 3 }],
      errors: [null, { code: "inference_error", message: "no" }, null],
      succeeded: 2,
      failed: 1,
    });
    expect(row?.completedAt).toBeInstanceOf(Date);
    expect(await dispatchRow(database(), id)).toBeUndefined();
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });

  it("leaves items without an outcome queued, the chunk open and its queue entry in place; a later write completes it", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3, 1] });
    const id = batch.chunkIds[0]!;
    expect(await finish(id, [ok(1), undefined, undefined])).toMatchObject({
      finished: 1,
      settlement: { completed: false },
    });
    expect(await chunkRow(database(), id)).toMatchObject({
      statuses: ["succeeded", "queued", "queued"],
      completedAt: null,
    });
    expect(await dispatchRow(database(), id)).toBeDefined();

    expect(await finish(id, [ok(9), ok(2), ok(3)])).toMatchObject({ finished: 2, succeeded: 2 });
    expect(await chunkRow(database(), id)).toMatchObject({
      statuses: ["succeeded", "succeeded", "succeeded"],
      results: [1, 2, 3],
      succeeded: 3,
    });
    expect(await dispatchRow(database(), id)).toBeUndefined();
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 1, completedAt: null });
  });

  it("keeps items canceled meanwhile as they are, and writes the others", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3] });
    const id = batch.chunkIds[0]!;
    await chunks().claim(id);
    await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 1, client));
    expect(await finish(id, [ok(0), ok(1), bad])).toMatchObject({
      finished: 2,
      succeeded: 1,
      failed: 1,
      settlement: { completed: true },
    });
    expect(await chunkRow(database(), id)).toMatchObject({
      statuses: ["succeeded", "canceled", "failed"],
      results: [0, null, null],
      succeeded: 1,
      failed: 1,
      canceled: 1,
    });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });

  it("writes nothing a second time: a duplicate write finishes no item and settles nothing", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 1] });
    const id = batch.chunkIds[0]!;
    await finish(id, [ok("first"), ok("first")]);
    expect(await finish(id, [ok("second"), bad])).toEqual({
      batchId: batch.batchId,
      finished: 0,
      succeeded: 0,
      failed: 0,
      succeededItems: [],
      settlement: null,
    });
    expect(await chunkRow(database(), id)).toMatchObject({ results: ["first", "first"], succeeded: 2, failed: 0 });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 1 });
  });

  it("fails with result_too_large the items whose results would take the chunk past MAX_CHUNK_RESULT_BYTES, counting results stored earlier", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [4] });
    const id = batch.chunkIds[0]!;
    const third = "x".repeat(Math.floor(MAX_CHUNK_RESULT_BYTES / 3));
    await finish(id, [ok(third), undefined, undefined, undefined]);
    // The second third fits; the third would pass the budget (with what the first left); a small one still fits after it.
    expect(await finish(id, [undefined, ok(third), ok(third), ok("small")])).toMatchObject({
      finished: 3,
      succeeded: 2,
      failed: 1,
    });
    const row = await chunkRow(database(), id);
    expect(row?.statuses).toEqual(["succeeded", "succeeded", "failed", "succeeded"]);
    expect((row?.errors as unknown[])[2]).toMatchObject({ code: "result_too_large" });
    expect((row?.results as unknown[])[3]).toBe("small");
    const { rows } = await database().pool.query<{ n: number }>(
      `select octet_length(results::text)::int as n from batch_chunks where id = $1`,
      [id],
    );
    expect(rows[0]!.n).toBeLessThanOrEqual(MAX_CHUNK_RESULT_BYTES);
  });

  // The budget once counted UTF-16 units, admitting non-ASCII results up to three times it.
  it("keeps a chunk's stored results within MAX_CHUNK_RESULT_BYTES bytes also for non-ASCII results", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    const id = batch.chunkIds[0]!;
    const text = "é".repeat(Math.floor(MAX_CHUNK_RESULT_BYTES * 0.45)); // 0.45 of the budget in characters, 0.9 in bytes
    await finish(id, [ok(text), ok(text)]);
    const { rows } = await database().pool.query<{ n: number }>(
      `select octet_length(results::text)::int as n from batch_chunks where id = $1`,
      [id],
    );
    expect(rows[0]!.n).toBeLessThanOrEqual(MAX_CHUNK_RESULT_BYTES);
  });

  it("runs in the caller's transaction: a rollback undoes the items, the settlement and the entry's removal", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1] });
    const id = batch.chunkIds[0]!;
    await database()
      .transaction(async (client) => {
        await chunks().finish(id, [ok()], client);
        throw new Error("abandon");
      })
      .catch(() => {});
    expect(await chunkRow(database(), id)).toMatchObject({ statuses: ["queued"], completedAt: null });
    expect(await dispatchRow(database(), id)).toBeDefined();
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 1 });
  });

  it("writes each item once when two workers finish the same chunk at once", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [4] });
    const id = batch.chunkIds[0]!;
    const [a, b] = await Promise.all([
      finish(id, [ok("a"), ok("a"), ok("a"), ok("a")]),
      finish(id, [ok("b"), ok("b"), ok("b"), ok("b")]),
    ]);
    expect([a?.finished, b?.finished].sort()).toEqual([0, 4]);
    const winner = a?.finished === 4 ? "a" : "b";
    expect((await chunkRow(database(), id))?.results).toEqual([winner, winner, winner, winner]);
    expect([a?.settlement?.completed, b?.settlement?.completed].filter(Boolean)).toHaveLength(1);
  });

  it("returns null for a chunk that does not exist", async () => {
    expect(await finish(crypto.randomUUID(), [ok()])).toBeNull();
  });
});
