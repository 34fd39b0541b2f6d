import { afterEach, describe, expect, it, vi } from "vitest";
import { throttledLogger } from "@inferline/runtime";

afterEach(() => {
  vi.useRealTimers();
});

describe("throttledLogger", () => {
  it("writes a message once per interval, then says how many it held back; other messages pass", () => {
    vi.useFakeTimers();
    const lines: Array<[string, object, string]> = [];
    const log = throttledLogger({
      warn: (obj, msg) => lines.push(["warn", obj, msg]),
      error: (obj, msg) => lines.push(["error", obj, msg]),
    });
    for (let i = 0; i < 5; i++) log.error({ i }, "queue connection error");
    log.warn({}, "another kind");
    log.error({ err: "another error" }, "queue connection error"); // same message, another error: its own kind
    vi.advanceTimersByTime(10_001);
    log.error({ i: 5 }, "queue connection error");
    expect(lines).toEqual([
      ["error", { i: 0 }, "queue connection error"],
      ["warn", {}, "another kind"],
      ["error", { err: "another error" }, "queue connection error"],
      ["error", { i: 5, held: 4 }, "queue connection error"],
    ]);
  });
});
