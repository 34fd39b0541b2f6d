import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore, BatchStore, type ResultPage } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createTenant, dispatchRow, newBatch, tensor } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const hit = (i: number) => JSON.stringify({ outputs: [{ name: "y", data: [i] }] });

async function pages(batchId: string): Promise<ResultPage[]> {
  const all: ResultPage[] = [];
  for await (const page of chunks().resultPages(batchId, 1024 * 1024)) all.push(page);
  return all;
}

describe("BatchDraft with result-cache hits", () => {
  it("stores hits succeeded and cached, queues only chunks with misses (sized by their misses), and counts hits out of remaining", async () => {
    const tenant = await createTenant(database());
    const draft = await new BatchStore(database().pool, database().prisma).open(newBatch(tenant));
    const [whole, mixed, none] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const keys = (from: number, n: number) => Array.from({ length: n }, (_, i) => `digest-${from + i}`);
    await draft.add({
      id: whole,
      firstIndex: 0,
      inputs: [[tensor(0)], [tensor(1)]],
      customIds: ["a", "b"],
      cacheKeys: keys(0, 2),
      hits: [hit(0), hit(1)],
    });
    await draft.add({
      id: mixed,
      firstIndex: 2,
      inputs: [[tensor(2)], [tensor(3)], [tensor(4)]],
      customIds: [null, null, null],
      cacheKeys: keys(2, 3),
      hits: [null, hit(3), null],
    });
    await draft.add({ id: none, firstIndex: 5, inputs: [[tensor(5)]], customIds: [null], cacheKeys: keys(5, 1) });
    let called = false;
    const committed = await draft.commit(6, null, async () => {
      called = true;
      return [];
    });
    expect(committed).toMatchObject({ chunkIds: [mixed, none], ranks: [0, 2], queued: 3, completed: false });
    expect(called).toBe(false);

    expect(await dispatchRow(database(), whole)).toBeUndefined();
    expect((await dispatchRow(database(), mixed))?.jobs).toBe(2);
    expect((await dispatchRow(database(), none))?.jobs).toBe(1);
    expect(await chunkRow(database(), whole)).toMatchObject({
      statuses: ["succeeded", "succeeded"],
      succeeded: 2,
      results: [JSON.parse(hit(0)), JSON.parse(hit(1))],
    });
    expect((await chunkRow(database(), whole))?.completedAt).toBeInstanceOf(Date);
    expect(await chunkRow(database(), mixed)).toMatchObject({
      statuses: ["queued", "succeeded", "queued"],
      succeeded: 1,
      completedAt: null,
    });
    expect(await batchRow(database(), draft.batch.id)).toMatchObject({ total: 6, remaining: 3, completedAt: null });

    // The worker claims only the misses, with the digests to store their results under.
    expect(await chunks().claim(whole)).toBeNull();
    const claimed = await chunks().claim(mixed);
    expect(claimed).toMatchObject({ items: [[tensor(2)], null, [tensor(4)]], cacheKeys: keys(2, 3) });

    const [a, b, c] = (await pages(draft.batch.id)) as [ResultPage, ResultPage, ResultPage];
    expect(a).toMatchObject({ statuses: ["succeeded", "succeeded"], cached: [true, true], results: [hit(0), hit(1)] });
    expect(b).toMatchObject({ statuses: ["running", "succeeded", "running"], cached: [false, true, false] });
    expect(c).toMatchObject({ cached: [false] });

    const item = await chunks().item(tenant, draft.batch.id, 3);
    expect(item).toMatchObject({ status: "succeeded", cached: true, attempts: 0, result: JSON.parse(hit(3)) });
    expect(item?.completedAt).toBe(item?.createdAt);
    expect((await chunks().item(tenant, draft.batch.id, 2))?.cached).toBeUndefined();
  });

  it("completes a batch whose items are all hits at commit, recording its event in the same transaction", async () => {
    const tenant = await createTenant(database());
    const draft = await new BatchStore(database().pool, database().prisma).open(newBatch(tenant));
    const id = crypto.randomUUID();
    await draft.add({
      id,
      firstIndex: 0,
      inputs: [[tensor(0)], [tensor(1)]],
      customIds: [null, null],
      cacheKeys: ["d0", "d1"],
      hits: [hit(0), hit(1)],
    });
    const committed = await draft.commit(2, null, async (q) => {
      // Inside the transaction: the batch is already completed there.
      const { rows } = await q.query<{ completed: boolean }>(
        `select "completedAt" is not null as completed from batches where id = $1`,
        [draft.batch.id],
      );
      return [rows[0]!.completed];
    });
    expect(committed).toEqual({ chunkIds: [], ranks: [], queued: 0, completed: true, recorded: [true] });
    expect(await batchRow(database(), draft.batch.id)).toMatchObject({ remaining: 0 });
    expect((await batchRow(database(), draft.batch.id))?.completedAt).toBeInstanceOf(Date);
    expect(await dispatchRow(database(), id)).toBeUndefined();
    const view = await new BatchStore(database().pool, database().prisma).view(
      (await database().prisma.batch.findUnique({ where: { id: draft.batch.id } }))!,
    );
    expect(view).toMatchObject({ status: "completed", counts: { succeeded: 2, queued: 0 } });
  });
});
