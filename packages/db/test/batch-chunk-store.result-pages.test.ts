import { describe, expect, it } from "vitest";
import { BatchChunkStore, type ResultChunk } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);

async function pages(batchId: string): Promise<ResultChunk[][]> {
  const all: ResultChunk[][] = [];
  for await (const page of chunks().resultPages(batchId)) all.push(page);
  return all;
}

describe("BatchChunkStore.resultPages", () => {
  it("reads every chunk once, in submission order, a page of ten chunks at a time", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: Array.from({ length: 23 }, (_, i) => 1 + (i % 3)) });
    const read = await pages(batch.batchId);
    expect(read.map((p) => p.length)).toEqual([10, 10, 3]);
    const flat = read.flat();
    let next = 0;
    for (const chunk of flat) {
      expect(chunk.firstIndex).toBe(next);
      next += chunk.size;
    }
    expect(next).toBe(batch.total);
    expect(flat.flatMap((c) => c.customIds)).toEqual(Array.from({ length: batch.total }, (_, i) => `c${i}`));
  });

  it("gives each item's status and its result and error as the JSON text stored", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3, 2, 1] });
    const [first, second] = batch.chunkIds as [string, string];
    const result = '{"outputs":[{"name":"y","data":[0.5]}],"label":"caf\\u00e9"}';
    await chunks().claim(first);
    await database().transaction((client) => chunks().finish(first, [{ status: "succeeded", resultJson: result }, { status: "failed", error: { code: "e", message: "m" } }, undefined], client));
    await chunks().claim(second);

    const [[a, b, c]] = (await pages(batch.batchId)) as [[ResultChunk, ResultChunk, ResultChunk]];
    expect(a).toEqual({
      firstIndex: 0,
      size: 3,
      customIds: ["c0", "c1", "c2"],
      statuses: ["succeeded", "failed", "running"],
      cached: [],
      results: [result, "null", "null"],
      errors: ["null", '{"code":"e","message":"m"}', "null"],
    });
    expect(b).toEqual({ firstIndex: 3, size: 2, customIds: ["c3", "c4"], statuses: ["running", "running"], cached: [], results: null, errors: null });
    expect(c).toMatchObject({ statuses: ["queued"], results: null, errors: null });
  });

  it("reads nothing for a batch without chunks", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [] });
    expect(await pages(batch.batchId)).toEqual([]);
  });
});
