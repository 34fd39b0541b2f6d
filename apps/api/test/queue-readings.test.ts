import { afterEach, describe, expect, it, vi } from "vitest";
import type { ModelQueueLine } from "@inferline/db";
import { ApiMetrics } from "../src/metrics.ts";
import { QueueReadings } from "../src/services/queue-readings.ts";

// The queue gauges over an in-memory store (the real statement: packages/db/test/dispatch-store.queues.test.ts;
// the gauges of a real API: e2e/metrics-exposition.test.ts).

afterEach(() => {
  vi.useRealTimers();
});

/** A store whose next read answers what the test says: lines, a failure, or nothing until released. */
function fakeStore() {
  let next: () => Promise<ModelQueueLine[]> = async () => [];
  let reads = 0;
  return {
    store: {
      queues: () => {
        reads++;
        return next();
      },
    },
    answer: (lines: ModelQueueLine[]) => (next = async () => lines),
    fail: () => (next = async () => Promise.reject(new Error("connection refused"))),
    hang: () => {
      let release!: (lines: ModelQueueLine[]) => void;
      next = () => new Promise((resolve) => (release = resolve));
      return (lines: ModelQueueLine[]) => release(lines);
    },
    reads: () => reads,
  };
}

const line = (model: string, queuedJobs: number, oldestQueuedAgeSeconds: number | null = null): ModelQueueLine => ({
  model,
  queuedJobs,
  queuedItems: 2,
  running: 1,
  oldestQueuedAgeSeconds,
});

async function sample(metrics: ApiMetrics, name: string, labels: string): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const found = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{${labels}} `) || (labels === "" && l.startsWith(`${name} `)));
  return found === undefined ? undefined : Number(found.slice(found.lastIndexOf(" ") + 1));
}

describe("QueueReadings and the queue gauges", () => {
  it("one read serves every gauge of a scrape and scrapes within a second; repository models with nothing pending read as zeros", async () => {
    const fake = fakeStore();
    fake.answer([line("iris", 7, 3)]);
    const metrics = new ApiMetrics();
    metrics.watchQueues(new QueueReadings(fake.store, ["iris", "ocr"]));
    const text = await metrics.registry.metrics();
    await metrics.registry.metrics();
    expect(fake.reads()).toBe(1);
    expect(text).toContain('inferline_queue_queued{model="iris",kind="job"} 7');
    expect(text).toContain('inferline_queue_queued{model="iris",kind="batch_item"} 2');
    expect(text).toContain('inferline_queue_running{model="iris"} 1');
    expect(text).toContain('inferline_queue_queued{model="ocr",kind="job"} 0');
    expect(text).toContain('inferline_queue_oldest_age_seconds{model="ocr"} 0');
    expect(await sample(metrics, "inferline_queue_oldest_age_seconds", 'model="iris"')).toBeGreaterThanOrEqual(3);
  });

  it("reads again once the reading is a second old; the reused reading's oldest age keeps growing meanwhile", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const fake = fakeStore();
    fake.answer([line("iris", 1, 10)]);
    const metrics = new ApiMetrics();
    metrics.watchQueues(new QueueReadings(fake.store, ["iris"]));
    expect(await sample(metrics, "inferline_queue_oldest_age_seconds", 'model="iris"')).toBe(10);
    vi.advanceTimersByTime(600);
    expect(await sample(metrics, "inferline_queue_oldest_age_seconds", 'model="iris"')).toBeCloseTo(10.6, 5);
    expect(fake.reads()).toBe(1);
    fake.answer([line("iris", 4, 0.5)]);
    vi.advanceTimersByTime(500);
    expect(await sample(metrics, "inferline_queue_queued", 'model="iris",kind="job"')).toBe(4);
    expect(fake.reads()).toBe(2);
  });

  it("a failed read keeps the last values and counts a failure; before any success the gauges are empty and the scrape still answers", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const fake = fakeStore();
    const failures: string[] = [];
    const metrics = new ApiMetrics();
    metrics.watchQueues(new QueueReadings(fake.store, ["iris"], { onFailure: (err) => failures.push(err.message) }));
    fake.fail();
    expect(await sample(metrics, "inferline_queue_queued", 'model="iris",kind="job"')).toBeUndefined();
    expect(await sample(metrics, "inferline_queue_reading_timestamp_seconds", "")).toBe(0);
    fake.answer([line("iris", 5)]);
    vi.advanceTimersByTime(1000);
    expect(await sample(metrics, "inferline_queue_queued", 'model="iris",kind="job"')).toBe(5);
    const readAt = await sample(metrics, "inferline_queue_reading_timestamp_seconds", "");
    fake.fail();
    vi.advanceTimersByTime(1000);
    expect(await sample(metrics, "inferline_queue_queued", 'model="iris",kind="job"')).toBe(5);
    expect(await sample(metrics, "inferline_queue_reading_timestamp_seconds", "")).toBe(readAt);
    expect(await sample(metrics, "inferline_queue_reading_failures_total", "")).toBeGreaterThanOrEqual(2);
    expect(failures[0]).toBe("connection refused");
  });

  it("a read slower than waitMs answers the scrape with the last reading; its result serves the next scrape", async () => {
    const fake = fakeStore();
    fake.answer([line("iris", 1)]);
    const readings = new QueueReadings(fake.store, ["iris"], { maxAgeMs: 0, waitMs: 20 });
    expect((await readings.current())?.models[0]?.queuedJobs).toBe(1);
    const release = fake.hang();
    expect((await readings.current())?.models[0]?.queuedJobs).toBe(1); // the read hangs: the last reading after 20 ms
    expect(fake.reads()).toBe(2);
    release([line("iris", 9)]);
    await vi.waitFor(async () => expect((await readings.current())?.models[0]?.queuedJobs).toBe(9));
  });
});
