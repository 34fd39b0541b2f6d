import { describe, expect, it } from "vitest";
import { BatchChunkStore, BatchStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createBatch, createTenant, dispatchRow } from "./support/rows.ts";
import { chunkExpired, fromNow, setBatchDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const batches = () => new BatchStore(database().pool, database().prisma);
const ok = { status: "succeeded" as const, resultJson: "{}" };
const expire = (select: { ids: string[] } | { limit: number }) =>
  database().transaction((client) => chunks().expire(select, client));

// Each test leaves no unstarted chunk of a batch past its deadline behind, so pages see only their own.
describe("BatchChunkStore.expire", () => {
  it("expires the queued items of unstarted chunks with deadline_exceeded, completes them and settles the batch", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 3, 2] });
    const [ran, canceledOne, untouched] = batch.chunkIds as [string, string, string];
    await chunks().claim(ran);
    await database().transaction((client) => chunks().finish(ran, [ok, ok], client));
    await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 3, client));
    await database().pool.query(
      `update batches set "createdAt" = now() - interval '5 seconds', "queueDeadline" = now() - interval '4 seconds' where id = $1`,
      [batch.batchId],
    );

    const expired = await expire({ limit: 10 });
    expect(expired).toEqual({
      chunks: 2,
      items: 4,
      batchIds: [batch.batchId],
      settlements: [{ batchId: batch.batchId, tenantId: tenant, completed: true }],
      byModel: [{ model: "iris", items: 4 }],
      emptied: expect.any(Array),
    });
    expect(expired.emptied.map((e) => e.id).sort()).toEqual([canceledOne, untouched].sort());
    expect(expired.emptied.every((e) => e.model === "iris" && e.waiting)).toBe(true);
    const error = {
      code: "deadline_exceeded",
      message: "not started within its queue deadline of 1 s (maxQueueSeconds)",
    };
    expect(await chunkRow(database(), canceledOne)).toMatchObject({
      statuses: ["expired", "canceled", "expired"],
      errors: [error, null, error],
      canceled: 1,
    });
    expect(await chunkRow(database(), untouched)).toMatchObject({
      statuses: ["expired", "expired"],
      errors: [error, error],
    });
    expect(await chunkExpired(database(), canceledOne)).toBe(2);
    for (const id of [canceledOne, untouched]) {
      expect((await chunkRow(database(), id))?.completedAt).toBeInstanceOf(Date);
      expect(await dispatchRow(database(), id)).toBeUndefined();
    }
    expect(await batchRow(database(), batch.batchId)).toMatchObject({ remaining: 0, canceledAt: null });
    const view = await batches().view((await batches().get(tenant, batch.batchId))!);
    expect(view).toMatchObject({
      status: "completed",
      counts: { queued: 0, running: 0, succeeded: 2, failed: 0, canceled: 1, expired: 4 },
    });
  });

  it("leaves started chunks to run and batches before their deadline alone; the batch completes when the rest finishes", async () => {
    const tenant = await createTenant(database());
    const [late, early] = [
      await createBatch(database(), tenant, { sizes: [1, 1] }),
      await createBatch(database(), tenant, { sizes: [1] }),
    ];
    await chunks().claim(late.chunkIds[0]!);
    await setBatchDeadlines(database(), late.batchId, { queueDeadline: fromNow(-1) });
    await setBatchDeadlines(database(), early.batchId, { queueDeadline: fromNow(60) });

    expect(await expire({ limit: 10 })).toMatchObject({
      chunks: 1,
      items: 1,
      settlements: [{ batchId: late.batchId, completed: false }],
    });
    expect((await chunkRow(database(), late.chunkIds[0]!))?.statuses).toEqual(["queued"]);
    expect((await chunkRow(database(), early.chunkIds[0]!))?.statuses).toEqual(["queued"]);
    const finished = await database().transaction((client) => chunks().finish(late.chunkIds[0]!, [ok], client));
    expect(finished?.settlement).toMatchObject({ completed: true });
  });

  it("takes only the named chunks when given ids, and at most `limit` chunks a page", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1, 1, 1] });
    await setBatchDeadlines(database(), batch.batchId, { queueDeadline: fromNow(-1) });
    expect(await expire({ ids: [batch.chunkIds[1]!] })).toMatchObject({ chunks: 1, items: 1 });
    expect((await chunkRow(database(), batch.chunkIds[0]!))?.statuses).toEqual(["queued"]);
    expect(await expire({ limit: 1 })).toMatchObject({ chunks: 1 });
    expect(await expire({ limit: 1 })).toMatchObject({ chunks: 1, settlements: [{ completed: true }] });
    expect(await expire({ limit: 1 })).toEqual({
      chunks: 0,
      items: 0,
      batchIds: [],
      settlements: [],
      byModel: [],
      emptied: [],
    });
  });

  it("skips a chunk another transaction holds (a worker claiming it)", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1] });
    await setBatchDeadlines(database(), batch.batchId, { queueDeadline: fromNow(-1) });
    const other = await database().pool.connect();
    try {
      await other.query("begin");
      await other.query(`select id from batch_chunks where id = $1 for update`, [batch.chunkIds[0]]);
      expect((await expire({ limit: 10 })).chunks).toBe(0);
      await other.query("rollback");
    } finally {
      other.release();
    }
    expect((await expire({ limit: 10 })).chunks).toBe(1);
  });
});
