import { describe, expect, it } from "vitest";
import { backoffDelay } from "../src/backoff.ts";

describe("backoffDelay", () => {
  it("doubles from baseMs per attempt up to maxMs when unjittered", () => {
    const schedule = { baseMs: 250, maxMs: 5000, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 40].map((attempt) => backoffDelay(schedule, attempt))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
    expect(backoffDelay(schedule, -3)).toBe(250);
  });

  it("draws each delay within the last `jitter` fraction of its ceiling", () => {
    for (let i = 0; i < 200; i++) {
      const half = backoffDelay({ baseMs: 1000, maxMs: 60_000 }, 2);
      expect(half).toBeGreaterThanOrEqual(2000);
      expect(half).toBeLessThanOrEqual(4000);
      const full = backoffDelay({ baseMs: 1000, maxMs: 60_000, jitter: 1 }, 2);
      expect(full).toBeGreaterThanOrEqual(0);
      expect(full).toBeLessThanOrEqual(4000);
    }
  });
});
