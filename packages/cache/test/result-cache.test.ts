import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { ResultCache } from "@inferline/cache";
import { deletePrefix, freePort, testRedisUrl, uniquePrefix } from "@inferline/testing";

// ResultCache against a real Redis, under a prefix of this file's own.

const prefix = uniquePrefix();
let redis: Redis;
let cache: ResultCache;
const spec = { ttlSeconds: 60, maxEntryBytes: 1024 };
let n = 0;
/** A digest no other test uses. */
const fresh = () => `d${++n}-${Date.now()}`;

beforeAll(() => {
  redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  cache = new ResultCache(redis, { prefix, flightTtlMs: 30_000 });
});
afterAll(async () => {
  redis?.disconnect();
  await deletePrefix(prefix);
});

describe("ResultCache", () => {
  it("stores results and reads them back index-aligned, null for a digest never stored", async () => {
    const [a, b, none] = [fresh(), fresh(), fresh()];
    const before = Date.now();
    expect(
      await cache.setMany(
        [
          { digest: a, resultJson: '{"x":1}' },
          { digest: b, resultJson: '{"x":"é"}' },
        ],
        spec,
      ),
    ).toEqual({ stored: 2, tooLarge: 0 });
    const [ea, enone, eb] = await cache.getMany([a, none, b], spec);
    expect(ea?.resultJson).toBe('{"x":1}');
    expect(eb?.resultJson).toBe('{"x":"é"}');
    expect(enone).toBeNull();
    expect(ea!.storedAt).toBeGreaterThanOrEqual(before);
    expect(await cache.getMany([], spec)).toEqual([]);
  });

  it("gives each entry the model's TTL (PX)", async () => {
    const d = fresh();
    await cache.setMany([{ digest: d, resultJson: "{}" }], { ...spec, ttlSeconds: 7 });
    const pttl = await redis.pttl(`${prefix}:cache:r:${d}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(7000);
  });

  it("misses an entry older than the model's current ttlSeconds (a lowered TTL applies to stored entries)", async () => {
    const d = fresh();
    // Stored 10 s ago under a longer TTL (still alive in Redis).
    await redis.set(`${prefix}:cache:r:${d}`, `${Date.now() - 10_000}:{"old":true}`, "PX", 60_000);
    expect(await cache.getMany([d], { ttlSeconds: 5 })).toEqual([null]);
    expect((await cache.getMany([d], { ttlSeconds: 60 }))[0]?.resultJson).toBe('{"old":true}');
  });

  it("does not store a result over maxEntryBytes (bytes of its JSON, not characters)", async () => {
    const [big, fits, multibyte] = [fresh(), fresh(), fresh()];
    const small = { ...spec, maxEntryBytes: 10 };
    expect(
      await cache.setMany(
        [
          { digest: big, resultJson: '{"x":"12345"}' },
          { digest: fits, resultJson: '{"x":"12"}' },
          { digest: multibyte, resultJson: '{"x":"éé"}' },
        ],
        small,
      ),
    ).toEqual({ stored: 1, tooLarge: 2 });
    expect((await cache.getMany([big, fits, multibyte], small)).map((e) => e?.resultJson ?? null)).toEqual([
      null,
      '{"x":"12"}',
      null,
    ]);
  });

  it("leads one flight per digest: a second lead names the first; only the holder lands it", async () => {
    const d = fresh();
    expect(await cache.lead(d, "job-1")).toBeNull();
    expect(await cache.lead(d, "job-1")).toBeNull(); // the holder asking again still leads
    expect(await cache.lead(d, "job-2")).toBe("job-1");
    const pttl = await redis.pttl(`${prefix}:cache:f:${d}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(30_000);
    await cache.land([{ digest: d, jobId: "job-2" }]);
    expect(await cache.lead(d, "job-3")).toBe("job-1");
    await cache.land([{ digest: d, jobId: "job-1" }]);
    expect(await cache.lead(d, "job-3")).toBeNull();
    await cache.land([]);
  });

  it("degrades when Redis is dead: lookups miss, writes store nothing, claims lead, nothing throws", async () => {
    const port = await freePort();
    const dead = new Redis(`redis://127.0.0.1:${port}`, {
      commandTimeout: 100,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 200,
    });
    dead.on("error", () => {});
    const warnings: string[] = [];
    const degraded = new ResultCache(dead, { prefix, logger: { warn: (_obj, msg) => warnings.push(msg ?? "") } });
    try {
      expect(await degraded.getMany([fresh(), fresh()], spec)).toEqual([null, null]);
      expect((await degraded.setMany([{ digest: fresh(), resultJson: "{}" }], spec)).stored).toBe(0);
      expect(await degraded.lead(fresh(), "job-1")).toBeNull();
      await expect(degraded.land([{ digest: fresh(), jobId: "job-1" }])).resolves.toBeUndefined();
      expect(warnings.length).toBeGreaterThanOrEqual(3);
    } finally {
      dead.disconnect();
    }
  });
});
