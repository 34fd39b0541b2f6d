import { describe, expect, it } from "vitest";
import type { CacheEntry } from "@inferline/cache";
import { DEFAULT_MODELS_DIR, type FlatTensor } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { MAX_CHUNK_RESULT_BYTES } from "@inferline/db";
import { BatchItemCache } from "../src/services/batch-item-cache.ts";

// The batch path's use of the result cache, over an in-memory cache: digests, hits, bypass, the
// chunk byte bound, a cache that does not answer, and the counts it reports.

const iris = ModelRepository.load(DEFAULT_MODELS_DIR).resolve("iris");
const item = (x: number): FlatTensor[] => [
  { name: "features", datatype: "FP32", shape: [1, 4], data: [x, 3.5, 1.4, 0.2] },
];

/** A cache holding `entries` by digest; counts its lookups; each lookup takes `delayMs`. */
function fakeCache(entries = new Map<string, string>(), delayMs = 0) {
  const calls: string[][] = [];
  return {
    calls,
    entries,
    async getMany(digests: readonly string[]): Promise<Array<CacheEntry | null>> {
      calls.push([...digests]);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return digests.map((d) => (entries.has(d) ? { resultJson: entries.get(d)!, storedAt: Date.now() } : null));
    },
  };
}

function counter() {
  const counts: Record<string, number> = {};
  return {
    counts,
    lookups: (model: string, outcome: string, n = 1) =>
      void (counts[`${model}/${outcome}`] = (counts[`${model}/${outcome}`] ?? 0) + n),
  };
}

const forTenant = (cache: ReturnType<typeof fakeCache>, tenantId = "t-1", bypass = false, commandTimeoutMs = 250) =>
  BatchItemCache.for(iris, tenantId, { requestedOutputs: [], bypass }, cache, { commandTimeoutMs })!;

describe("BatchItemCache", () => {
  it("is absent for a model without a cache, or without a cache client", () => {
    const lookup = ModelRepository.load(DEFAULT_MODELS_DIR);
    const noCache = { ...iris, manifest: { ...lookup.manifest("iris"), cache: undefined } };
    expect(
      BatchItemCache.for(noCache, "t", { requestedOutputs: [], bypass: false }, fakeCache(), { commandTimeoutMs: 250 }),
    ).toBeUndefined();
    expect(
      BatchItemCache.for(iris, "t", { requestedOutputs: [], bypass: false }, undefined, { commandTimeoutMs: 250 }),
    ).toBeUndefined();
  });

  it("looks a chunk up in one call and returns its hits index-aligned; digests are per tenant", async () => {
    const cache = fakeCache();
    const first = await forTenant(cache).chunk([item(1), item(2), item(3)]);
    expect(first).toEqual({ cacheKeys: expect.any(Array), hitCount: 0 });
    cache.entries.set(first.cacheKeys[1]!, '{"r":2}');
    const metrics = counter();
    const batch = forTenant(cache);
    expect(await batch.chunk([item(1), item(2), item(3)])).toEqual({
      cacheKeys: first.cacheKeys,
      hits: [null, '{"r":2}', null],
      hitCount: 1,
    });
    batch.report(metrics);
    expect(metrics.counts).toEqual({ "iris/hit": 1, "iris/miss": 2 });
    expect(cache.calls.length).toBe(2);
    expect((await forTenant(cache, "t-2").chunk([item(2)])).hitCount).toBe(0);
  });

  it("with bypass looks nothing up but keeps the digests (the runs refresh the entries)", async () => {
    const cache = fakeCache();
    const keys = (await forTenant(cache).chunk([item(1)])).cacheKeys;
    cache.entries.set(keys[0]!, "{}");
    const metrics = counter();
    const bypass = forTenant(cache, "t-1", true);
    expect(bypass.looksUp).toBe(false);
    expect(await bypass.chunk([item(1)])).toEqual({ cacheKeys: keys, hitCount: 0 });
    bypass.report(metrics);
    expect(metrics.counts).toEqual({ "iris/bypass": 1 });
    expect(cache.calls.length).toBe(1);
  });

  it("leaves to run the hits that would take a chunk past MAX_CHUNK_RESULT_BYTES", async () => {
    const cache = fakeCache();
    const items = [item(1), item(2), item(3)];
    const keys = (await forTenant(cache).chunk(items)).cacheKeys;
    const big = `"${"x".repeat(Math.floor(MAX_CHUNK_RESULT_BYTES / 2))}"`;
    for (const k of keys) cache.entries.set(k, big);
    const state = await forTenant(cache).chunk(items);
    expect(state.hitCount).toBe(1);
    expect(state.hits).toEqual([big, null, null]);
  });

  it("stops looking up for the rest of the batch once a lookup took the command timeout (a dead cache costs one timeout)", async () => {
    const cache = fakeCache(new Map(), 30);
    const metrics = counter();
    const batch = forTenant(cache, "t-1", false, 20);
    await batch.chunk([item(1)]);
    await batch.chunk([item(2), item(3)]);
    expect(cache.calls.length).toBe(1);
    batch.report(metrics);
    expect(metrics.counts).toEqual({ "iris/miss": 3 });
  });
});
