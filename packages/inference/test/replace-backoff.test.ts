import { describe, expect, it } from "vitest";
import { backoffDelay } from "@inferline/runtime";
import { DEFAULT_REPLACE_BACKOFF_MS, MAX_REPLACE_BACKOFF_MS, replaceBackoff } from "../src/thread-pool-settings.ts";

// A replacement thread that fails to load is retried after these delays: doubling, capped, exact.
describe("replaceBackoff", () => {
  it.each([undefined, 50, 1000, 45_000])(
    "with a first delay of %s ms doubles up to the cap, without jitter",
    (baseMs) => {
      const base = baseMs ?? DEFAULT_REPLACE_BACKOFF_MS;
      for (let attempt = 0; attempt < 40; attempt++) {
        expect(backoffDelay(replaceBackoff(baseMs), attempt)).toBe(
          Math.min(base * 2 ** attempt, MAX_REPLACE_BACKOFF_MS),
        );
      }
    },
  );
});
