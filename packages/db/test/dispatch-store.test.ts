import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore, DispatchStore, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant, dispatchRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const dispatches = () => new DispatchStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);
/** Each test reads and writes entries of a model of its own, so the others' entries never show. */
const uniqueModel = () => `model-${crypto.randomUUID()}`;

/** Moves an entry's creation time back by `ms`, as if it had waited that long. */
async function age(id: string, ms: number): Promise<void> {
  await database().pool.query(
    `update dispatches set "createdAt" = "createdAt" - make_interval(secs => $2::double precision / 1000) where id = $1`,
    [id, ms],
  );
}

describe("DispatchStore.pendingEntries", () => {
  it("returns the entries of the given models older than the bound, oldest first", async () => {
    const tenant = await createTenant(database());
    const [m, other] = [uniqueModel(), uniqueModel()];
    const [old, older, fresh, elsewhere] = [
      newJob(tenant, { model: m, priority: "high" }),
      newJob(tenant, { model: m }),
      newJob(tenant, { model: m }),
      newJob(tenant, { model: other }),
    ];
    await jobs().insertMany([old, older, fresh, elsewhere]);
    await age(old.dispatchId!, 60_000);
    await age(older.dispatchId!, 120_000);
    await age(elsewhere.dispatchId!, 120_000);

    const pending = await dispatches().pendingEntries([m], 30_000);
    expect(pending).toEqual([
      {
        id: older.dispatchId,
        model: m,
        version: "1",
        priority: "normal",
        jobIds: [older.id],
        batchChunk: false,
        jobs: 1,
      },
      { id: old.dispatchId, model: m, version: "1", priority: "high", jobIds: [old.id], batchChunk: false, jobs: 1 },
    ]);
    // older and elsewhere are equally old (one insert statement, then the same age).
    const both = (await dispatches().pendingEntries([m, other], 30_000)).map((p) => p.id);
    expect(both.slice(0, 2).sort()).toEqual([older.dispatchId, elsewhere.dispatchId].sort());
    expect(both[2]).toBe(old.dispatchId);
  });

  it("returns a batch chunk's entry as one, with its item count", async () => {
    const tenant = await createTenant(database());
    const m = uniqueModel();
    const batch = await createBatch(database(), tenant, { model: m, sizes: [4, 2] });
    for (const id of batch.chunkIds) await age(id, 60_000);
    const pending = await dispatches().pendingEntries([m], 30_000);
    expect(pending.map((p) => [p.id, p.batchChunk, p.jobs, p.jobIds])).toEqual(
      expect.arrayContaining([
        [batch.chunkIds[0], true, 4, []],
        [batch.chunkIds[1], true, 2, []],
      ]),
    );
    expect(pending).toHaveLength(2);
  });
});

describe("DispatchStore.pendingItems", () => {
  it("lists an entry's jobs not yet terminal, and whether a worker had started one", async () => {
    const tenant = await createTenant(database());
    const entry = crypto.randomUUID();
    const [queued, running, done] = [
      newJob(tenant, { dispatchId: entry }),
      newJob(tenant, { dispatchId: entry }),
      newJob(tenant, { dispatchId: entry }),
    ];
    await jobs().insertMany([queued, running, done]);
    const row = { id: entry, jobIds: [queued.id, running.id, done.id], batchChunk: false };
    expect(await dispatches().pendingItems(row)).toEqual({
      left: expect.arrayContaining([queued.id, running.id, done.id]),
      started: false,
    });

    await jobs().claim([running.id]);
    await jobs().finish([{ id: done.id, status: "succeeded", resultJson: "{}" }]);
    const items = await dispatches().pendingItems(row);
    expect(items.left.sort()).toEqual([queued.id, running.id].sort());
    expect(items.started).toBe(true);

    await jobs().finish([queued.id, running.id].map((id) => ({ id, status: "succeeded" as const, resultJson: "{}" })));
    expect(await dispatches().pendingItems(row)).toEqual({ left: [], started: false });
  });

  it("names a batch chunk while it is unfinished, started once claimed", async () => {
    const tenant = await createTenant(database());
    const { chunkIds } = await createBatch(database(), tenant, { sizes: [2] });
    const chunk = { id: chunkIds[0]!, jobIds: [], batchChunk: true };
    const store = new BatchChunkStore(database().pool);
    expect(await dispatches().pendingItems(chunk)).toEqual({ left: [chunk.id], started: false });
    await store.claim(chunk.id);
    expect(await dispatches().pendingItems(chunk)).toEqual({ left: [chunk.id], started: true });
    await database().transaction((client) =>
      store.finish(
        chunk.id,
        [
          { status: "succeeded", resultJson: "1" },
          { status: "succeeded", resultJson: "2" },
        ],
        client,
      ),
    );
    expect(await dispatches().pendingItems(chunk)).toEqual({ left: [], started: false });
  });
});

describe("DispatchStore.delete", () => {
  it("forgets one entry and leaves the others", async () => {
    const tenant = await createTenant(database());
    const [a, b] = [newJob(tenant), newJob(tenant)];
    await jobs().insertMany([a, b]);
    await dispatches().delete(a.dispatchId!);
    await dispatches().delete(a.dispatchId!); // already gone: a no-op
    expect(await dispatchRow(database(), a.dispatchId!)).toBeUndefined();
    expect(await dispatchRow(database(), b.dispatchId!)).toBeDefined();
  });
});

describe("DispatchStore.pendingByModel", () => {
  it("sums the jobs and batch items of the model's unprocessed entries", async () => {
    const tenant = await createTenant(database());
    const m = uniqueModel();
    expect(await dispatches().pendingByModel(m)).toBe(0);
    const entry = crypto.randomUUID();
    const [a, b, c] = [
      newJob(tenant, { model: m, dispatchId: entry }),
      newJob(tenant, { model: m, dispatchId: entry }),
      newJob(tenant, { model: m }),
    ];
    await jobs().insertMany([a, b, c, newJob(tenant, { model: uniqueModel() })]);
    await createBatch(database(), tenant, { model: m, sizes: [5, 3] });
    expect(await dispatches().pendingByModel(m)).toBe(3 + 8);

    await jobs().finish([{ id: c.id, status: "succeeded", resultJson: "{}" }], [c.dispatchId!]);
    expect(await dispatches().pendingByModel(m)).toBe(2 + 8);
  });
});
