import { afterEach, describe, expect, it, vi } from "vitest";
import { TenantSlots } from "../../src/services/tenant-slots.ts";

// The slots alone; GET /v1/jobs taking them against a real database: apps/api/test/list-slots.test.ts.

afterEach(() => {
  vi.useRealTimers();
});

const slots = (waitMs = 10_000) => new TenantSlots({ perTenant: 2, waitingPerTenant: 2, waitMs });

describe("TenantSlots", () => {
  it("runs perTenant of a tenant at once, the next in order; another tenant never waits; past the queue refused", async () => {
    const s = slots();
    const [a1, a2] = [await s.acquire("a"), await s.acquire("a")];
    const order: string[] = [];
    const a3 = s.acquire("a").then((slot) => (order.push("a3"), slot));
    const a4 = s.acquire("a").then((slot) => (order.push("a4"), slot));
    expect(await s.acquire("a")).toBe("refused");
    const b1 = await s.acquire("b");
    expect(typeof b1).toBe("function");
    expect(s.stats()).toEqual({ running: 3, waiting: 2 });

    (a1 as () => void)();
    (a1 as () => void)(); // a second release frees nothing more
    expect(typeof (await a3)).toBe("function");
    expect(s.stats()).toEqual({ running: 3, waiting: 1 });
    (a2 as () => void)();
    const last = await a4;
    expect(order).toEqual(["a3", "a4"]);
    for (const slot of [await a3, last, b1]) (slot as () => void)();
    expect(s.stats()).toEqual({ running: 0, waiting: 0 });
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
    expect(await late).toBe("refused");
    expect(s.stats()).toEqual({ running: 2, waiting: 0 });
    expect(await s.acquire("a", AbortSignal.abort())).toBe("aborted");
  });
});
