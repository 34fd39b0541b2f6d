import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";
import { fromNow, setBatchDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };

describe("BatchChunkStore.overdue", () => {
  it("says an unstarted chunk of a batch past its queue deadline expires, and a started one does not", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1, 1] });
    const [started, unstarted] = batch.chunkIds as [string, string];
    await chunks().claim(started);
    await setBatchDeadlines(database(), batch.batchId, { queueDeadline: fromNow(-1) });
    expect(await chunks().overdue(unstarted)).toEqual({ batchId: batch.batchId, expire: true, cancel: false });
    expect(await chunks().overdue(started)).toEqual({ batchId: batch.batchId, expire: false, cancel: false });
  });

  it("says a chunk of a batch past its Cancel-After time is canceled", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1] });
    await setBatchDeadlines(database(), batch.batchId, { cancelAt: fromNow(-1) });
    expect(await chunks().overdue(batch.chunkIds[0]!)).toEqual({ batchId: batch.batchId, expire: false, cancel: true });
  });

  it("says nothing is due before the deadlines, and gives null for a complete chunk or an unknown one", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1, 1] });
    await setBatchDeadlines(database(), batch.batchId, { queueDeadline: fromNow(60), cancelAt: fromNow(60) });
    expect(await chunks().overdue(batch.chunkIds[0]!)).toEqual({
      batchId: batch.batchId,
      expire: false,
      cancel: false,
    });
    await database().transaction((client) => chunks().finish(batch.chunkIds[1]!, [ok], client));
    expect(await chunks().overdue(batch.chunkIds[1]!)).toBeNull();
    expect(await chunks().overdue(crypto.randomUUID())).toBeNull();
  });
});
