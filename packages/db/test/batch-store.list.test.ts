import { describe, expect, it } from "vitest";
import { BatchListQuery, InvalidCursorError } from "@inferline/contracts";
import { BatchChunkStore, BatchStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant, type BatchSpec } from "./support/rows.ts";

const database = useTestDatabase();
const store = (listScanRows?: number) => new BatchStore(database().pool, database().prisma, { listScanRows });
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };

/** Every page of a listing, following the cursors to the end: each page's batch ids. */
async function allPages(tenantId: string, query: Partial<BatchListQuery>, listScanRows?: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store(listScanRows).list(tenantId, BatchListQuery.parse({ ...query, cursor }));
    pages.push(page.batches.map((b) => b.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

/** Batches created at `base + i` ms (i from 0): the last is the newest. */
async function batchesAt(tenantId: string, count: number, spec: BatchSpec = {}): Promise<string[]> {
  const base = Date.UTC(2026, 0, 1);
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push((await createBatch(database(), tenantId, { ...spec, createdAt: new Date(base + i) })).batchId);
  return ids;
}

describe("BatchStore.list", () => {
  it("pages the tenant's batches newest first by cursor, each once, with their views", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const ids = await batchesAt(tenant, 5);
    await batchesAt(other, 2);

    const pages = await allPages(tenant, { limit: 2 });
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...ids].reverse());
    const [first] = (await store().list(tenant, BatchListQuery.parse({ limit: 1 }))).batches;
    expect(first).toEqual(await store().view((await store().get(tenant, ids[4]!))!));
  });

  it("filters by status exactly as each batch's view tells it, and by model", async () => {
    const tenant = await createTenant(database());
    const [queued, running, completed, canceled, partlyCanceled] = await batchesAt(tenant, 5, { sizes: [2, 1] });
    const lookup = (
      await createBatch(database(), tenant, { model: "lookup", createdAt: new Date(Date.UTC(2025, 0, 1)) })
    ).batchId;
    const chunksOf = async (id: string) =>
      (
        await database().pool.query<{ id: string }>(
          `select id from batch_chunks where "batchId" = $1 order by "firstIndex"`,
          [id],
        )
      ).rows.map((r) => r.id);

    await chunks().claim((await chunksOf(running!))[0]!);
    for (const chunk of await chunksOf(completed!)) {
      await chunks().claim(chunk);
      await database().transaction((client) => chunks().finish(chunk, [ok, ok], client));
    }
    await database().transaction((client) => store().cancel(canceled!, client));
    await database().transaction((client) => chunks().cancelItem(tenant, partlyCanceled!, 0, client));

    const listed = async (query: Partial<BatchListQuery>) => (await allPages(tenant, query)).flat();
    expect(await listed({ status: "queued" })).toEqual([partlyCanceled, queued, lookup]);
    expect(await listed({ status: "running" })).toEqual([running]);
    expect(await listed({ status: "completed" })).toEqual([completed]);
    expect(await listed({ status: "canceled" })).toEqual([canceled]);
    expect(await listed({ model: "lookup" })).toEqual([lookup]);
    expect(await listed({ model: "iris", status: "queued" })).toEqual([partlyCanceled, queued]);
    for (const id of [queued, running, completed, canceled, partlyCanceled]) {
      const { status } = await store().view((await store().get(tenant, id!))!);
      expect(await listed({ status }), `${id} is ${status}`).toContain(id);
    }
  });

  it("reads at most listScanRows batches for a filter: a page with no match in them is empty but has a cursor; cursors find every match once", async () => {
    const tenant = await createTenant(database());
    const ids = await batchesAt(tenant, 7);
    await database().transaction((client) => store().cancel(ids[0]!, client));
    await database().transaction((client) => store().cancel(ids[3]!, client));

    const first = await store(2).list(tenant, BatchListQuery.parse({ status: "canceled", limit: 1 }));
    expect(first.batches).toEqual([]);
    expect(first.nextCursor).toEqual(expect.any(String));
    expect((await allPages(tenant, { status: "canceled", limit: 1 }, 2)).flat()).toEqual([ids[3], ids[0]]);
  });

  it("refuses a cursor it did not make", async () => {
    const tenant = await createTenant(database());
    await expect(store().list(tenant, BatchListQuery.parse({ cursor: "bm90LWEtY3Vyc29y" }))).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
  });
});
