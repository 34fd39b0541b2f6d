import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffDelay } from "@inferline/runtime";
import { jobRetryBackoff } from "../src/job-runs.ts";

afterEach(() => vi.restoreAllMocks());

// Items the worker re-enqueues itself wait as BullMQ's exponential backoff (the dispatcher's, jitter
// 0.5) waits between an entry's attempts: between half and all of RETRY_BACKOFF_MS doubled per attempt made.
describe("jobRetryBackoff", () => {
  it.each([
    [1, 1000, 1000],
    [2, 1000, 2000],
    [5, 1000, 16_000],
    [3, 250, 1000],
  ])("after %i attempts from %i ms, waits between half and all of %i ms", (attempts, baseMs, full) => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelay(jobRetryBackoff(baseMs), attempts - 1)).toBe(full);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(backoffDelay(jobRetryBackoff(baseMs), attempts - 1)).toBe(full * 0.75);
    vi.spyOn(Math, "random").mockReturnValue(0.999_999);
    expect(backoffDelay(jobRetryBackoff(baseMs), attempts - 1)).toBe(Math.round(full / 2));
  });

  it("is not capped below the doubled delay", () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelay(jobRetryBackoff(1000), 19)).toBe(1000 * 2 ** 19);
  });
});
