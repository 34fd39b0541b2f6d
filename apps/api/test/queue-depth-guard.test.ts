import { afterEach, describe, expect, it, vi } from "vitest";
import { QueueDepthGuard } from "../src/services/queue-depth-guard.ts";

// The depth guard's readings over an in-memory depth (the 503 itself: e2e/limits.test.ts).

afterEach(() => {
  vi.useRealTimers();
});

describe("QueueDepthGuard", () => {
  it("decides without waiting while its reading of a model is fresh, counting this process's queued jobs in, and asks for a reading once it is a second old", async () => {
    vi.useFakeTimers();
    const depths: Record<string, number> = { m: 8 };
    const reads: string[] = [];
    const guard = new QueueDepthGuard(async (model) => (reads.push(model), depths[model] ?? 0), 10);
    expect(guard.roomNow("m")).toBe(false); // never read
    await guard.assertRoom("m");
    expect(guard.roomNow("m")).toBe(true);
    guard.noteQueued("m", 2);
    expect(() => guard.roomNow("m")).toThrow(expect.objectContaining({ code: "queue_full", status: 503 }));
    await expect(guard.assertRoom("m")).rejects.toMatchObject({ code: "queue_full" }); // the same fresh reading
    depths.m = 0;
    vi.advanceTimersByTime(1000);
    expect(guard.roomNow("m")).toBe(false);
    await guard.assertRoom("m", 10);
    expect(() => guard.roomNow("m", 11)).toThrow("11 more would exceed it");
    expect(reads).toEqual(["m", "m"]);
  });
});
