import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { chunkRow, createBatch, createTenant, tensor } from "./support/rows.ts";
import { dispatchStartedAt, fromNow, setBatchDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };

describe("BatchChunkStore.claim", () => {
  it("marks the chunk started, counts the attempt, and returns its items with what their batch asks for", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 3], requestedOutputs: ["y"] });
    const second = batch.chunkIds[1]!;
    expect(await chunks().claim(second)).toEqual({
      id: second,
      batchId: batch.batchId,
      tenantId: tenant,
      model: "iris",
      version: "1",
      requestedOutputs: ["y"],
      firstIndex: 2,
      attempts: 1,
      items: [[tensor(2)], [tensor(3)], [tensor(4)]],
      cacheKeys: [],
      traceParent: null,
    });
    expect((await chunkRow(database(), second))?.startedAt).toBeInstanceOf(Date);
    expect(await chunkRow(database(), batch.chunkIds[0]!)).toMatchObject({ attempts: 0, startedAt: null });
  });

  it("counts every attempt and keeps the first start time", async () => {
    const tenant = await createTenant(database());
    const { chunkIds } = await createBatch(database(), tenant, { sizes: [1] });
    await chunks().claim(chunkIds[0]!);
    const started = (await chunkRow(database(), chunkIds[0]!))?.startedAt;
    expect((await chunks().claim(chunkIds[0]!))?.attempts).toBe(2);
    expect(await chunkRow(database(), chunkIds[0]!)).toMatchObject({ attempts: 2, startedAt: started });
  });

  it("gives null instead of the inputs of items already terminal", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3] });
    await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 1, client));
    expect((await chunks().claim(batch.chunkIds[0]!))?.items).toEqual([[tensor(0)], null, [tensor(2)]]);
  });

  it("marks the chunk's queue entry started at its first claim", async () => {
    const tenant = await createTenant(database());
    const { chunkIds } = await createBatch(database(), tenant, { sizes: [1] });
    expect(await dispatchStartedAt(database(), chunkIds[0]!)).toBeNull();
    await chunks().claim(chunkIds[0]!);
    const started = await dispatchStartedAt(database(), chunkIds[0]!);
    expect(started).toBeInstanceOf(Date);
    await chunks().claim(chunkIds[0]!);
    expect(await dispatchStartedAt(database(), chunkIds[0]!)).toEqual(started);
  });

  it("returns null for an unstarted chunk of a batch past its queue deadline, leaving it as it is; a started one runs again", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1, 1] });
    const [started, unstarted] = batch.chunkIds as [string, string];
    await chunks().claim(started);
    await setBatchDeadlines(database(), batch.batchId, { queueDeadline: fromNow(-1) });

    expect(await chunks().claim(unstarted)).toBeNull();
    expect(await chunkRow(database(), unstarted)).toMatchObject({ attempts: 0, startedAt: null, statuses: ["queued"] });
    expect(await dispatchStartedAt(database(), unstarted)).toBeNull();
    expect((await chunks().claim(started))?.attempts).toBe(2);
  });

  it("returns null for any chunk of a batch past its Cancel-After time, started or not", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1, 1] });
    const [started, unstarted] = batch.chunkIds as [string, string];
    await chunks().claim(started);
    await setBatchDeadlines(database(), batch.batchId, { cancelAt: fromNow(-1) });
    expect(await chunks().claim(started)).toBeNull();
    expect(await chunks().claim(unstarted)).toBeNull();
    expect((await chunkRow(database(), started))?.attempts).toBe(1);
  });

  it("returns null for a finished chunk (a duplicate or late queue entry) without counting an attempt, and for an unknown one", async () => {
    const tenant = await createTenant(database());
    const { chunkIds } = await createBatch(database(), tenant, { sizes: [1] });
    await database().transaction((client) => chunks().finish(chunkIds[0]!, [ok], client));
    expect(await chunks().claim(chunkIds[0]!)).toBeNull();
    expect(await chunkRow(database(), chunkIds[0]!)).toMatchObject({ attempts: 0, startedAt: null });
    expect(await chunks().claim(crypto.randomUUID())).toBeNull();
  });
});
