import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { runningUnderCap, tenantCapKey, TenantLeases } from "@inferline/queue";
import { deletePrefix, sleepUntil, testRedisUrl, uniquePrefix } from "@inferline/testing";

// TenantLeases against a real Redis, under a prefix of this file's own.

const prefix = uniquePrefix();
let redis: Redis;
let n = 0;
/** The key of a cap no other test uses. */
const freshKey = (model = "m") => tenantCapKey(prefix, `t${++n}`, model);

beforeAll(() => {
  redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis?.disconnect();
  await deletePrefix(prefix);
});

describe("TenantLeases", () => {
  it("grants leases until their weights reach the cap, and again once one is released", async () => {
    const leases = new TenantLeases(redis, 60_000);
    const key = freshKey();
    const slots = [{ key, maxRunning: 3 }];
    const a = await leases.acquire("a", slots, 2);
    expect(a).not.toBeNull();
    expect(await leases.acquire("b", slots, 2)).toBeNull();
    const c = await leases.acquire("c", slots, 1);
    expect(c).not.toBeNull();
    expect(await runningUnderCap(redis, key)).toBe(3);
    await leases.release(a!);
    expect(await runningUnderCap(redis, key)).toBe(1);
    expect(await leases.acquire("b", slots, 2)).not.toBeNull();
  });

  it("counts an entry larger than the cap as the whole cap: it runs alone rather than never", async () => {
    const leases = new TenantLeases(redis, 60_000);
    const slots = [{ key: freshKey(), maxRunning: 2 }];
    const big = await leases.acquire("big", slots, 500);
    expect(big).not.toBeNull();
    expect(await leases.acquire("small", slots, 1)).toBeNull();
    await leases.release(big!);
    expect(await leases.acquire("small", slots, 1)).not.toBeNull();
    expect(await leases.acquire("big", slots, 500)).toBeNull();
  });

  it("takes every cap an entry falls under or none of them", async () => {
    const leases = new TenantLeases(redis, 60_000);
    const [model, all] = [freshKey("iris"), freshKey("*")];
    expect(await leases.acquire("x", [{ key: all, maxRunning: 1 }], 1)).not.toBeNull();
    // The model cap has room, the tenant-wide one not: nothing is taken on either.
    expect(
      await leases.acquire(
        "y",
        [
          { key: model, maxRunning: 5 },
          { key: all, maxRunning: 1 },
        ],
        1,
      ),
    ).toBeNull();
    expect(await runningUnderCap(redis, model)).toBe(0);
    expect(await runningUnderCap(redis, all)).toBe(1);
  });

  it("lets a lease nobody renews lapse (a dead worker's), and keeps one that is renewed", async () => {
    const short = new TenantLeases(redis, 1000);
    const key = freshKey();
    const slots = [{ key, maxRunning: 1 }];
    const kept = await short.acquire("kept", slots, 1);
    expect(kept).not.toBeNull();
    // Renewed past several lease lives: still counted, so no second lease fits.
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      await short.renew(kept!);
      expect(await short.acquire("other", slots, 1)).toBeNull();
      await new Promise((r) => setTimeout(r, 100));
    }
    // No longer renewed (its worker died): it lapses and the capacity comes back.
    const next = await sleepUntil(() => short.acquire("next", slots, 1), {
      message: "the unrenewed lease never lapsed",
    });
    expect(next.slots[0]!.member).toBe("next#1");
    expect(await redis.zscore(key, "kept#1")).toBeNull();
  });
});
