import { describe, expect, it } from "vitest";
import { CLASS_BASE, CLASS_SPAN, entryPriority, MAX_QUEUE_PRIORITY } from "@inferline/queue";

describe("entryPriority", () => {
  it("keeps the classes apart (high before normal before low), never 0, never past BullMQ's limit", () => {
    expect(CLASS_BASE.high).toBe(1);
    expect(entryPriority("high", Number.MAX_SAFE_INTEGER)).toBeLessThan(entryPriority("normal"));
    expect(entryPriority("normal", Number.MAX_SAFE_INTEGER)).toBeLessThan(entryPriority("low"));
    expect(entryPriority("low", Number.MAX_SAFE_INTEGER)).toBeLessThanOrEqual(MAX_QUEUE_PRIORITY);
    expect(entryPriority("high", -5)).toBe(1);
  });

  it("puts an entry as far back in its class as its tenant's queued work ahead of it, divided by the tenant's weight", () => {
    expect(entryPriority("normal")).toBe(CLASS_BASE.normal);
    expect(entryPriority("normal", 512)).toBe(CLASS_BASE.normal + 512);
    expect(entryPriority("normal", 512, 2)).toBe(CLASS_BASE.normal + 256);
    expect(entryPriority("normal", 5, 2)).toBe(CLASS_BASE.normal + 2);
    expect(entryPriority("normal", 10, 0)).toBe(CLASS_BASE.normal + 10); // a weight below 1 counts as 1
    expect(entryPriority("low", 10 * CLASS_SPAN)).toBe(CLASS_BASE.low + CLASS_SPAN - 1);
  });

  it("interleaves two backlogged tenants in turn, the one of weight 2 taking two entries for each of the other's", () => {
    // Entries of 100 jobs each: A (weight 2) and B (weight 1), queued one tenant after the other.
    const a = Array.from({ length: 6 }, (_, i) => ({ tenant: "A", priority: entryPriority("normal", i * 100, 2) }));
    const b = Array.from({ length: 6 }, (_, i) => ({ tenant: "B", priority: entryPriority("normal", i * 100, 1) }));
    // BullMQ runs lower priorities first, equal ones in the order they were added (A's first).
    const order = [...a, ...b]
      .map((e, added) => ({ ...e, added }))
      .sort((x, y) => x.priority - y.priority || x.added - y.added)
      .map((e) => e.tenant)
      .join("");
    expect(order.slice(0, 9)).toBe("ABAABAABA");
  });
});
