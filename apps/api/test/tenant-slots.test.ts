import { afterEach, describe, expect, it, vi } from "vitest";
import { SlotLease, TenantSlots } from "../src/services/tenant-slots.ts";

// The slots alone; GET /v1/jobs taking them against a real database: e2e/list-slots.test.ts.

afterEach(() => {
  vi.useRealTimers();
});

/** GET /v1/jobs's shape of limits: no cap per process, two a tenant at once, two waiting. */
const slots = (waitMs = 10_000) =>
  new TenantSlots({ perProcess: Number.POSITIVE_INFINITY, perTenant: 2, waitingPerTenant: 2, waitMs });

const lease = (slot: unknown) => {
  expect(slot).toBeInstanceOf(SlotLease);
  return slot as SlotLease;
};

describe("TenantSlots", () => {
  it("runs perTenant of a tenant at once, the next in order; another tenant never waits; past the queue refused", async () => {
    const s = slots();
    const [a1, a2] = [lease(await s.acquire("a")), lease(await s.acquire("a"))];
    const order: string[] = [];
    const a3 = s.acquire("a").then((slot) => (order.push("a3"), slot));
    const a4 = s.acquire("a").then((slot) => (order.push("a4"), slot));
    expect(await s.acquire("a")).toBe("tenant");
    const b1 = lease(await s.acquire("b"));
    expect(s.stats()).toEqual({ active: 3, waiting: 2 });

    a1.release();
    a1.release(); // a second release frees nothing more
    const third = lease(await a3);
    expect(s.stats()).toEqual({ active: 3, waiting: 1 });
    a2.release();
    const fourth = lease(await a4);
    expect(order).toEqual(["a3", "a4"]);
    for (const slot of [third, fourth, b1]) slot.release();
    expect(s.stats()).toEqual({ active: 0, waiting: 0 });
  });

  it("refuses one that waited waitMs, and answers aborted to one whose caller gave up, freeing its place", async () => {
    vi.useFakeTimers();
    const s = slots(1000);
    await s.acquire("a");
    await s.acquire("a");
    const late = s.acquire("a");
    const gone = new AbortController();
    const leaving = s.acquire("a", gone.signal);
    gone.abort();
    expect(await leaving).toBe("aborted");
    expect(s.stats().waiting).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(await late).toBe("tenant");
    expect(s.stats()).toEqual({ active: 2, waiting: 0 });
    expect(await s.acquire("a", AbortSignal.abort())).toBe("aborted");
  });
});
