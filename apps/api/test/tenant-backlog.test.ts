import { afterEach, describe, expect, it, vi } from "vitest";
import type { QueueClass } from "@inferline/db";
import { TenantBacklog } from "../src/services/tenant-backlog.ts";

// The fair-share rank's readings, over an in-memory `read` (its statement has a store test:
// packages/db/test/dispatch-store.queue-reads.test.ts).

afterEach(() => {
  vi.useRealTimers();
});

function setup(queued: Record<string, number>, maxAgeMs = 1000) {
  const reads: Array<{ classes: string[]; leaveOut: string[] }> = [];
  let failing = false;
  const backlog = new TenantBacklog(
    async (classes: QueueClass[], leaveOut: string[]) => {
      reads.push({ classes: classes.map((c) => `${c.tenantId}/${c.priority}`), leaveOut });
      if (failing) throw new Error("PostgreSQL is down");
      return classes.map((c) => queued[`${c.tenantId}/${c.priority}`] ?? 0);
    },
    { maxAgeMs },
  );
  return { backlog, reads, fail: () => (failing = true) };
}

const entry = (id: string, tenantId: string, jobs: number, priority: QueueClass["priority"] = "normal") => ({
  id,
  tenantId,
  model: "iris",
  priority,
  jobs,
});

describe("TenantBacklog", () => {
  it("ranks each entry by its class's queued work plus the entries of its class ranked before it, reading every stale class in one call that leaves the entries out", async () => {
    const { backlog, reads } = setup({ "A/normal": 500, "B/normal": 0, "A/high": 7 });
    const ranks = await backlog.rank([
      entry("e1", "A", 256),
      entry("e2", "B", 3),
      entry("e3", "A", 256),
      entry("e4", "A", 10, "high"),
    ]);
    expect(ranks).toEqual([500, 0, 756, 7]);
    expect(reads).toEqual([{ classes: ["A/normal", "B/normal", "A/high"], leaveOut: ["e1", "e2", "e3", "e4"] }]);
  });

  it("reads a class again only once its reading is maxAgeMs old; until then counts the entries it ranked", async () => {
    vi.useFakeTimers();
    const queued = { "A/normal": 100 };
    const { backlog, reads } = setup(queued);
    expect(await backlog.rank([entry("e1", "A", 50)])).toEqual([100]);
    vi.advanceTimersByTime(999);
    expect(await backlog.rank([entry("e2", "A", 50)])).toEqual([150]);
    expect(reads).toHaveLength(1);
    queued["A/normal"] = 20; // the workers took most of it
    vi.advanceTimersByTime(1);
    expect(await backlog.rank([entry("e3", "A", 1)])).toEqual([20]);
    expect(reads).toHaveLength(2);
  });

  it("ranks from what it knows when PostgreSQL cannot be read: a class never read ranks 0", async () => {
    const { backlog, fail } = setup({ "A/normal": 40 });
    expect(await backlog.rank([entry("e1", "A", 5)])).toEqual([40]);
    fail();
    expect(await backlog.rank([entry("e2", "B", 5), entry("e3", "B", 5)])).toEqual([0, 5]);
  });
});
