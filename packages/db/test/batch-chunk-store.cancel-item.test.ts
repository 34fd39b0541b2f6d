import { describe, expect, it } from "vitest";
import { BatchChunkStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createBatch, createTenant, dispatchRow } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const cancelItem = (tenantId: string, batchId: string, index: number) =>
  database().transaction((client) => chunks().cancelItem(tenantId, batchId, index, client));

describe("BatchChunkStore.cancelItem", () => {
  it("cancels one queued item of the tenant's batch, counts it against the batch and takes it off its chunk's queue entry", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 3] });
    expect(await cancelItem(tenant, batch.batchId, 3)).toEqual({
      settlement: { batchId: batch.batchId, tenantId: tenant, completed: false },
      emptied: [],
    });
    expect(await chunkRow(database(), batch.chunkIds[1]!)).toMatchObject({
      statuses: ["queued", "canceled", "queued"],
      canceled: 1,
      completedAt: null,
    });
    expect(await chunkRow(database(), batch.chunkIds[0]!)).toMatchObject({
      statuses: ["queued", "queued"],
      canceled: 0,
    });
    expect(await dispatchRow(database(), batch.chunkIds[1]!)).toMatchObject({ jobs: 2 });
    expect(await dispatchRow(database(), batch.chunkIds[0]!)).toMatchObject({ jobs: 2 });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 4 });
  });

  it("completes the chunk with its last item, forgets its queue entry, and completes the batch with its last", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    const id = batch.chunkIds[0]!;
    await database().transaction((client) =>
      chunks().finish(id, [{ status: "succeeded", resultJson: "1" }, undefined], client),
    );
    expect(await cancelItem(tenant, batch.batchId, 1)).toEqual({
      settlement: { batchId: batch.batchId, tenantId: tenant, completed: true },
      emptied: [{ id, model: "iris", version: "1", waiting: true }],
    });
    expect((await chunkRow(database(), id))?.completedAt).toBeInstanceOf(Date);
    expect(await dispatchRow(database(), id)).toBeUndefined();
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });

  it("refuses an item already terminal, another tenant's, and one past the batch's end", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    await cancelItem(tenant, batch.batchId, 0);
    expect(await cancelItem(tenant, batch.batchId, 0)).toBeNull();
    expect(await cancelItem(other, batch.batchId, 1)).toBeNull();
    expect(await cancelItem(tenant, batch.batchId, 2)).toBeNull();
    expect(await chunkRow(database(), batch.chunkIds[0]!)).toMatchObject({
      statuses: ["canceled", "queued"],
      canceled: 1,
    });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 1 });
  });

  it("settles each item once when a cancel races the chunk's write", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3] });
    const id = batch.chunkIds[0]!;
    const ok = { status: "succeeded" as const, resultJson: "{}" };
    const [canceled, written] = await Promise.all([
      cancelItem(tenant, batch.batchId, 1),
      database().transaction((client) => chunks().finish(id, [ok, ok, ok], client)),
    ]);
    const row = await chunkRow(database(), id);
    expect(row?.statuses[1]).toBe(canceled ? "canceled" : "succeeded");
    expect(written?.finished).toBe(canceled ? 2 : 3);
    expect(row).toMatchObject({ succeeded: written?.finished, canceled: canceled ? 1 : 0 });
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0 });
  });
});
