import { afterEach, describe, expect, it, vi } from "vitest";
import { QuotaExceededError, TenantQuotaGuard } from "../src/services/quota-guard.ts";

// The quota's readings, over an in-memory reading of each tenant's queued work (the 429 itself:
// e2e/quotas.test.ts).

afterEach(() => {
  vi.useRealTimers();
});

function setup(queued: Record<string, number>, defaultMaxQueued?: number) {
  const reads: string[] = [];
  const guard = new TenantQuotaGuard(
    async (tenantId) => {
      reads.push(tenantId);
      return queued[tenantId] ?? 0;
    },
    { defaultMaxQueued },
  );
  return { guard, reads };
}

const tenant = (id: string, maxQueued: number | null = null) => ({ id, name: id, maxQueued });

describe("TenantQuotaGuard", () => {
  it("never reads for a tenant without a quota; the tenant's own maxQueued replaces the default", async () => {
    const { guard, reads } = setup({ free: 1_000_000, own: 9 });
    await guard.admit(tenant("free"));
    expect(reads).toEqual([]);
    const { guard: withDefault } = setup({ own: 9 }, 5);
    await expect(withDefault.admit(tenant("own", 10))).resolves.toBeUndefined();
    await expect(withDefault.admit(tenant("own", 10))).rejects.toBeInstanceOf(QuotaExceededError);
  });

  it("concurrent admissions share one reading and count themselves in, so they cannot overshoot; a batch that would pass the quota is refused", async () => {
    const { guard, reads } = setup({ t: 2 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => guard.admit(tenant("t", 5))));
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
    ]);
    expect(reads).toEqual(["t"]);
    const refused = (results[3] as PromiseRejectedResult).reason as QuotaExceededError;
    expect(refused).toMatchObject({ status: 429, code: "quota_exceeded", retryAfterSeconds: 5 });
    expect(refused.message).toContain("quota (maxQueued) is 5");

    const { guard: batches } = setup({ b: 10 });
    await expect(batches.assertRoom(tenant("b", 20), 11)).rejects.toThrow("11 more would exceed it");
    await batches.assertRoom(tenant("b", 20), 10);
  });

  it("admits without waiting on a fresh reading, counting the job in; with no fresh reading it counts nothing and asks for one", async () => {
    vi.useFakeTimers();
    const { guard, reads } = setup({ t: 3 });
    expect(guard.admitNow(tenant("free"))).toBe(true); // no quota: nothing to read
    expect(guard.admitNow(tenant("t", 5))).toBe(false);
    await guard.admit(tenant("t", 5)); // reads 3, counts 4
    expect(guard.admitNow(tenant("t", 5))).toBe(true); // 5
    expect(() => guard.admitNow(tenant("t", 5))).toThrow(QuotaExceededError);
    vi.advanceTimersByTime(1000);
    expect(guard.admitNow(tenant("t", 5))).toBe(false);
    await guard.admit(tenant("t", 5)); // read again: 3, so admitted (4)
    expect(reads).toEqual(["t", "t"]);
  });

  it("reads a tenant again once its reading is a second old", async () => {
    vi.useFakeTimers();
    const queued = { t: 5 };
    const { guard, reads } = setup(queued);
    await expect(guard.admit(tenant("t", 5))).rejects.toBeInstanceOf(QuotaExceededError);
    queued.t = 0; // a worker started them
    vi.advanceTimersByTime(999);
    await expect(guard.admit(tenant("t", 5))).rejects.toBeInstanceOf(QuotaExceededError);
    vi.advanceTimersByTime(1);
    await guard.admit(tenant("t", 5));
    expect(reads).toEqual(["t", "t"]);
  });
});
