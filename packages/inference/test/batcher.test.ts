import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DynamicBatcher } from "../src/batcher.ts";

// What batching.test.ts does not cover, on a fake clock: the queue delay to the millisecond,
// maxInFlight above 1, items that run alone, and a failed run. (The batcher reads
// performance.now() and setTimeout; vitest fakes both.)

/** A run per call that finishes when told to, answering each item doubled (or failing). */
function runs() {
  const calls: Array<{ items: number[]; finish: () => void; fail: (err: Error) => void }> = [];
  const run = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({ items, finish: () => resolve(items.map((x) => x * 2)), fail: reject });
    });
  return { calls, run, batches: () => calls.map((c) => c.items) };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("DynamicBatcher", () => {
  it("dispatches a batch that is not full when its oldest item has waited maxQueueDelayMs, not before", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 100,
      maxQueueDelayMs: 50,
      rowsOf: () => 1,
      run: r.run,
    });
    const first = batcher.submit(1);
    await vi.advanceTimersByTimeAsync(30);
    const second = batcher.submit(2); // joins the waiting batch; does not restart its clock
    await vi.advanceTimersByTimeAsync(19);
    expect(r.batches()).toEqual([]);
    expect(batcher.size).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.batches()).toEqual([[1, 2]]);
    r.calls[0]!.finish();
    expect(await Promise.all([first, second])).toEqual([2, 4]);
  });

  it("counts the delay from an item's arrival, also when it spent part of it waiting for a run slot", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 100,
      maxQueueDelayMs: 50,
      maxInFlight: 1,
      rowsOf: () => 1,
      run: r.run,
    });
    void batcher.submit(1, { alone: true }); // takes the only slot at once
    void batcher.submit(2);
    await vi.advanceTimersByTimeAsync(30);
    r.calls[0]!.finish(); // the slot frees when item 2 has waited 30 ms
    await vi.advanceTimersByTimeAsync(19);
    expect(r.batches()).toEqual([[1]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.batches()).toEqual([[1], [2]]);
  });

  it("with maxQueueDelayMs 0 dispatches without a timer, the items submitted in one synchronous run together", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 100,
      maxQueueDelayMs: 0,
      maxInFlight: 4,
      rowsOf: () => 1,
      run: r.run,
    });
    void batcher.submit(1);
    void batcher.submit(2);
    expect(vi.getTimerCount()).toBe(0);
    await Promise.resolve();
    expect(r.batches()).toEqual([[1, 2]]);
    void batcher.submit(3);
    await Promise.resolve();
    expect(r.batches()).toEqual([[1, 2], [3]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with maxQueueDelayMs 0 and maxBatchSize 1, runs each item of one synchronous run in a batch of its own, as many at once as there are slots", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 1,
      maxQueueDelayMs: 0,
      maxInFlight: 2,
      rowsOf: () => 1,
      run: r.run,
    });
    for (const x of [1, 2, 3]) void batcher.submit(x);
    await Promise.resolve();
    expect(r.batches()).toEqual([[1], [2]]);
    r.calls[0]!.finish();
    await vi.waitFor(() => expect(r.batches()).toEqual([[1], [2], [3]]));
  });

  it("counts rows, not items, against maxBatchSize: a full batch goes at once and the rest waits its own delay", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 4,
      maxQueueDelayMs: 1000,
      maxInFlight: 4,
      rowsOf: (x) => x,
      run: r.run,
    });
    for (const x of [2, 1, 1, 3]) void batcher.submit(x);
    expect(r.batches()).toEqual([[2, 1, 1]]); // 4 rows; the 3-row item would overflow it
    await vi.advanceTimersByTimeAsync(999);
    expect(r.batches()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.batches()).toEqual([[2, 1, 1], [3]]);
  });

  it("runs an item larger than maxBatchSize in a batch of its own", () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 4,
      maxQueueDelayMs: 1000,
      maxInFlight: 4,
      rowsOf: (x) => x,
      run: r.run,
    });
    void batcher.submit(9);
    void batcher.submit(1);
    expect(r.batches()).toEqual([[9]]);
  });

  it("keeps at most maxInFlight runs in flight, gathering items meanwhile into the next batch", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 8,
      maxQueueDelayMs: 0,
      maxInFlight: 2,
      rowsOf: () => 1,
      run: r.run,
    });
    const results = [batcher.submit(1)];
    await Promise.resolve();
    results.push(batcher.submit(2));
    await Promise.resolve();
    expect(r.batches()).toEqual([[1], [2]]);
    results.push(...[3, 4, 5].map((x) => batcher.submit(x)));
    await Promise.resolve();
    expect(batcher.size).toBe(3);
    r.calls[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(r.batches()).toEqual([[1], [2], [3, 4, 5]]);
    r.calls[1]!.finish();
    r.calls[2]!.finish();
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8, 10]);
  });

  it("runs an item marked alone at once, by itself, even with a long delay and company arriving after it", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 8,
      maxQueueDelayMs: 60_000,
      maxInFlight: 1,
      rowsOf: () => 1,
      run: r.run,
    });
    const suspect = batcher.submit(7, { alone: true });
    expect(r.batches()).toEqual([[7]]);
    const others = [batcher.submit(1), batcher.submit(2)];
    r.calls[0]!.finish();
    expect(await suspect).toBe(14);
    expect(r.batches()).toEqual([[7]]); // the others wait for their own delay
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.batches()).toEqual([[7], [1, 2]]);
    r.calls[1]!.finish();
    expect(await Promise.all(others)).toEqual([2, 4]);
  });

  it("runs items marked alone one per batch, never with each other or with ordinary items queued after them", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 8,
      maxQueueDelayMs: 60_000,
      maxInFlight: 1,
      rowsOf: () => 1,
      run: r.run,
    });
    void batcher.submit(1, { alone: true });
    void batcher.submit(2, { alone: true });
    void batcher.submit(3);
    void batcher.submit(4, { alone: true });
    expect(r.batches()).toEqual([[1]]);
    r.calls[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(r.batches()).toEqual([[1], [2]]);
    r.calls[1]!.finish();
    await vi.advanceTimersByTimeAsync(60_000); // 3 is ordinary: it waits its delay
    expect(r.batches()).toEqual([[1], [2], [3]]); // without 4
    r.calls[2]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(r.batches()).toEqual([[1], [2], [3], [4]]);
  });

  it("rejects every item of a failed run, and only those", async () => {
    const r = runs();
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 2,
      maxQueueDelayMs: 0,
      maxInFlight: 2,
      rowsOf: () => 1,
      run: r.run,
    });
    const results = [1, 2, 3].map((x) => batcher.submit(x));
    await Promise.resolve();
    expect(r.batches()).toEqual([[1, 2], [3]]);
    const boom = new Error("session.run failed");
    r.calls[0]!.fail(boom);
    await expect(results[0]).rejects.toBe(boom);
    await expect(results[1]).rejects.toBe(boom);
    r.calls[1]!.finish();
    expect(await results[2]).toBe(6);
  });

  describe("turns between share keys", () => {
    /** One item per run, one run at a time: the order of the runs is the queue's order. */
    function oneByOne() {
      const r = runs();
      const batcher = new DynamicBatcher<number, number>({
        maxBatchSize: 1,
        maxQueueDelayMs: 0,
        maxInFlight: 1,
        rowsOf: () => 1,
        run: r.run,
      });
      /** Finishes runs one by one until `n` have started; the items in the order they ran. */
      const order = async (n: number) => {
        for (let i = 0; i < n - 1; i++) {
          await vi.waitFor(() => expect(r.calls.length).toBeGreaterThan(i));
          r.calls[i]!.finish();
        }
        await vi.waitFor(() => expect(r.calls.length).toBe(n));
        return r.batches().flat();
      };
      return { batcher, order };
    }

    it("a key's one item runs after one turn of another key's backlog, not behind all of it", async () => {
      const { batcher, order } = oneByOne();
      for (const x of [1, 2, 3, 4, 5]) void batcher.submit(x, { share: { key: "heavy" } });
      await Promise.resolve();
      void batcher.submit(100, { share: { key: "light" } });
      expect(await order(6)).toEqual([1, 100, 2, 3, 4, 5]);
    });

    it("backlogged keys take turns by weight: 3 against 1 runs three of one for each of the other", async () => {
      const { batcher, order } = oneByOne();
      for (let i = 0; i < 12; i++) void batcher.submit(i, { share: { key: "three", weight: 3 } });
      for (let i = 100; i < 112; i++) void batcher.submit(i, { share: { key: "one" } });
      const ran = await order(12);
      expect(ran.filter((x) => x >= 100).length).toBe(3);
      // Each key's items keep their order.
      expect(ran.filter((x) => x < 100)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      expect(ran.filter((x) => x >= 100)).toEqual([100, 101, 102]);
    });

    it("a key that went idle gets no credit for it: it starts from the others' present turn", async () => {
      const { batcher, order } = oneByOne();
      void batcher.submit(100, { share: { key: "light" } });
      for (const x of [1, 2, 3, 4, 5, 6]) void batcher.submit(x, { share: { key: "heavy" } });
      await order(4);
      // Light ran first and was idle since; its next item takes one turn, not four.
      void batcher.submit(101, { share: { key: "light" } });
      expect(await order(7)).toEqual([100, 1, 2, 3, 101, 4, 5]);
    });

    it("items without a key run in their order, as items of one key do", async () => {
      const { batcher, order } = oneByOne();
      for (const x of [1, 2, 3]) void batcher.submit(x);
      void batcher.submit(4, { share: { key: "" } });
      expect(await order(4)).toEqual([1, 2, 3, 4]);
    });
  });
});
