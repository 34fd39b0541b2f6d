import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffDelay } from "../src/backoff.ts";

afterEach(() => vi.restoreAllMocks());

describe("backoffDelay", () => {
  it("doubles from baseMs up to maxMs, exact without jitter", () => {
    const delays = Array.from({ length: 8 }, (_, attempt) =>
      backoffDelay({ baseMs: 100, maxMs: 5000, jitter: 0 }, attempt),
    );
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it("draws each delay within the last `jitter` fraction of its ceiling (half by default)", () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelay({ baseMs: 1000, maxMs: 60_000 }, 2)).toBe(4000);
    vi.spyOn(Math, "random").mockReturnValue(0.999_999);
    expect(backoffDelay({ baseMs: 1000, maxMs: 60_000 }, 2)).toBe(2000);
    expect(backoffDelay({ baseMs: 1000, maxMs: 60_000, jitter: 1 }, 2)).toBe(0);
  });

  it("treats a negative attempt as the first retry and never overflows", () => {
    expect(backoffDelay({ baseMs: 10, maxMs: 1000, jitter: 0 }, -3)).toBe(10);
    expect(Number.isFinite(backoffDelay({ baseMs: 1, maxMs: Number.POSITIVE_INFINITY, jitter: 0 }, 10_000))).toBe(true);
  });
});
