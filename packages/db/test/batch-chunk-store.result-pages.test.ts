import { describe, expect, it } from "vitest";
import { BatchChunkStore, type ResultPage } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);
const MIB = 1024 * 1024;

async function pages(batchId: string, pageBytes = MIB): Promise<ResultPage[]> {
  const all: ResultPage[] = [];
  for await (const page of chunks().resultPages(batchId, pageBytes)) all.push(page);
  return all;
}

/** Bytes of result and error JSON a page holds. */
const pageBytesOf = (page: ResultPage) =>
  [...page.results, ...page.errors].reduce((n, text) => n + Buffer.byteLength(text ?? ""), 0);

/** Gives every item of the batch a result of `bytes` bytes of JSON (as json_agg lays an array out: the reader takes either layout). */
async function fillResults(batchId: string, bytes: number): Promise<void> {
  await database().pool.query(
    `update batch_chunks set statuses = array_fill('succeeded'::text, array[size]),
       results = (select json_agg(json_build_object('pad', repeat('x', $2::int - 10))) from generate_series(1, size))
     where "batchId" = $1`,
    [batchId, bytes],
  );
}

describe("BatchChunkStore.resultPages", () => {
  it("reads every item once, in submission order, a chunk of small results to a page", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: Array.from({ length: 23 }, (_, i) => 1 + (i % 3)) });
    const read = await pages(batch.batchId);
    expect(read).toHaveLength(23);
    let next = 0;
    for (const page of read) {
      expect(page.firstIndex).toBe(next);
      next += page.size;
    }
    expect(next).toBe(batch.total);
    expect(read.flatMap((p) => p.customIds)).toEqual(Array.from({ length: batch.total }, (_, i) => `c${i}`));
  });

  it("gives each item's status and its result and error as the JSON text stored", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3, 2, 1] });
    const [first, second] = batch.chunkIds as [string, string];
    const result = '{"outputs":[{"name":"y","data":[0.5]}],"label":"caf\\u00e9"}';
    await chunks().claim(first);
    await database().transaction((client) =>
      chunks().finish(
        first,
        [
          { status: "succeeded", resultJson: result },
          { status: "failed", error: { code: "e", message: "m" } },
          undefined,
        ],
        client,
      ),
    );
    await chunks().claim(second);

    const [a, b, c] = (await pages(batch.batchId)) as [ResultPage, ResultPage, ResultPage];
    expect(a).toEqual({
      firstIndex: 0,
      size: 3,
      customIds: ["c0", "c1", "c2"],
      statuses: ["succeeded", "failed", "running"],
      cached: [false, false, false],
      results: [result, "null", "null"],
      errors: ["null", '{"code":"e","message":"m"}', "null"],
    });
    expect(b).toEqual({
      firstIndex: 3,
      size: 2,
      customIds: ["c3", "c4"],
      statuses: ["running", "running"],
      cached: [false, false],
      results: [null, null],
      errors: [null, null],
    });
    expect(c).toMatchObject({ statuses: ["queued"], results: [null], errors: [null] });
  });

  it("holds at most pageBytes of results a page (one item when a single one is larger), reading a large chunk in pieces", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [40, 40, 5] });
    await fillResults(batch.batchId, 100_000); // 4 MB a full chunk
    const budget = 350_000;
    const read = await pages(batch.batchId, budget);
    for (const page of read) expect(pageBytesOf(page)).toBeLessThanOrEqual(budget);
    expect(read.map((p) => p.size)).toEqual([
      3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 2,
    ]);
    expect(read.map((p) => p.firstIndex)).toEqual(read.map((_, i) => read.slice(0, i).reduce((n, p) => n + p.size, 0)));
    const texts = read.flatMap((p) => p.results);
    expect(texts).toHaveLength(batch.total);
    expect(texts.every((t) => (JSON.parse(t!) as { pad: string }).pad.length === 100_000 - 10)).toBe(true);

    const small = await createBatch(database(), tenant, { sizes: [3, 2] });
    await fillResults(small.batchId, 1000);
    expect((await pages(small.batchId, 10)).map((p) => p.size)).toEqual([1, 1, 1, 1, 1]);
  });

  it("reads nothing for a batch without chunks", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [] });
    expect(await pages(batch.batchId)).toEqual([]);
  });
});
