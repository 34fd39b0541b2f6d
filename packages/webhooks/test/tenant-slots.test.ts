import { describe, expect, it } from "vitest";
import { TenantSlots } from "../src/index.ts";

describe("TenantSlots", () => {
  it("gives each tenant at most `cap` slots, independently of other tenants", () => {
    const slots = new TenantSlots(2);
    expect([slots.tryAcquire("a"), slots.tryAcquire("a"), slots.tryAcquire("a")]).toEqual([true, true, false]);
    expect(slots.tryAcquire("b")).toBe(true);
    expect(slots.inFlight("a")).toBe(2);
    slots.release("a");
    expect(slots.tryAcquire("a")).toBe(true);
    expect(slots.tryAcquire("a")).toBe(false);
  });

  it("parks with a jittered delay that grows with the tenant's parked entries, up to 30 s", () => {
    const now = 1_000_000;
    const lowest = new TenantSlots(4, () => 0);
    const highest = new TenantSlots(4, () => 0.999_999);
    expect(lowest.park("a", "e1", now)).toBe(125);
    expect(highest.park("a", "e1", now)).toBe(375);
    const delays = Array.from({ length: 2000 }, (_, i) => lowest.park("a", `e${i + 2}`, now));
    expect(delays[3]).toBe(250); // four parked already: twice the base
    expect(delays.every((d, i) => i === 0 || d >= delays[i - 1]!)).toBe(true);
    expect(Math.max(...delays)).toBe(15_000); // 30 s, at the lowest jitter
    expect(new TenantSlots(4, () => 0).park("b", "x", now)).toBe(125); // another tenant starts over
  });

  it("names one parked entry to wake per released slot, oldest first, skipping those whose delay is over", () => {
    const slots = new TenantSlots(1, () => 0.5);
    slots.tryAcquire("a");
    const now = Date.now();
    slots.park("a", "expired", now - 60_000);
    slots.park("a", "p1", now);
    slots.park("a", "p2", now);
    expect(slots.release("a")).toBe("p1");
    slots.tryAcquire("a");
    expect(slots.release("a")).toBe("p2");
    expect(slots.release("a")).toBeUndefined();
  });
});
