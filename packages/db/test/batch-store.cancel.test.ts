import { describe, expect, it } from "vitest";
import { BatchChunkStore, BatchStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createBatch, createTenant, dispatchRow } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new BatchStore(database().pool, database().prisma);
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };
const cancel = (id: string) => database().transaction((client) => store().cancel(id, client));

describe("BatchStore.cancel", () => {
  it("cancels every item not yet terminal, completes the batch and forgets the chunks' queue entries", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 2, 2] });
    const [done, partial, untouched] = batch.chunkIds as [string, string, string];
    await database().transaction((client) => chunks().finish(done, [ok, ok], client));
    await database().transaction((client) => chunks().finish(partial, [ok, undefined], client));

    const canceled = await cancel(batch.batchId);
    expect(canceled).toEqual({
      canceled: 3,
      model: "iris",
      settlement: { batchId: batch.batchId, tenantId: tenant, completed: true },
      emptied: expect.any(Array),
    });
    // The entries it forgot (the done chunk's went with its results): a worker had taken none.
    expect(canceled?.emptied.sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [partial, untouched].sort().map((id) => ({ id, model: "iris", version: "1", waiting: true })),
    );
    expect(await chunkRow(database(), partial)).toMatchObject({
      statuses: ["succeeded", "canceled"],
      succeeded: 1,
      canceled: 1,
    });
    expect(await chunkRow(database(), untouched)).toMatchObject({ statuses: ["canceled", "canceled"], canceled: 2 });
    expect(await chunkRow(database(), done)).toMatchObject({ statuses: ["succeeded", "succeeded"], canceled: 0 });
    for (const id of batch.chunkIds) {
      expect((await chunkRow(database(), id))?.completedAt).toBeInstanceOf(Date);
      expect(await dispatchRow(database(), id)).toBeUndefined();
    }
    const row = await batchRow(database(), batch.batchId);
    expect(row).toMatchObject({ remaining: 0 });
    expect(row?.completedAt).toBeInstanceOf(Date);
    expect(row?.canceledAt).toBeInstanceOf(Date);
  });

  it("does nothing to a batch that has completed", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1] });
    await database().transaction((client) => chunks().finish(batch.chunkIds[0]!, [ok], client));
    expect(await cancel(batch.batchId)).toBeNull();
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ canceledAt: null });
    expect((await chunkRow(database(), batch.chunkIds[0]!))?.statuses).toEqual(["succeeded"]);
  });

  it("returns null for a batch that does not exist", async () => {
    expect(await cancel("00000000-0000-4000-8000-000000000000")).toBeNull();
  });

  it("keeps the cancel when the chunk's results arrive afterwards", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    await chunks().claim(batch.chunkIds[0]!);
    await cancel(batch.batchId);
    expect(
      await database().transaction((client) => chunks().finish(batch.chunkIds[0]!, [ok, ok], client)),
    ).toMatchObject({ finished: 0, settlement: null });
    expect(await chunkRow(database(), batch.chunkIds[0]!)).toMatchObject({
      statuses: ["canceled", "canceled"],
      succeeded: 0,
      results: null,
    });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });

  it("counts each item once when cancels and chunk writes race, and completes the batch once", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: Array.from({ length: 8 }, () => 4) });
    const outcomes = await Promise.all([
      ...batch.chunkIds.map((id) => database().transaction((client) => chunks().finish(id, [ok, ok, ok, ok], client))),
      cancel(batch.batchId),
      cancel(batch.batchId),
    ]);
    const writes = outcomes.slice(0, 8) as Array<Awaited<ReturnType<BatchChunkStore["finish"]>>>;
    const cancels = outcomes.slice(8) as Array<Awaited<ReturnType<BatchStore["cancel"]>>>;
    const written = writes.reduce((n, w) => n + (w?.finished ?? 0), 0);
    const canceled = cancels.reduce((n, c) => n + (c?.canceled ?? 0), 0);
    expect(written + canceled).toBe(32);
    const completions = [...writes.map((w) => w?.settlement), ...cancels.map((c) => c?.settlement)].filter(
      (s) => s?.completed,
    );
    expect(completions).toHaveLength(1);
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });
});
