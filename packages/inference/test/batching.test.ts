import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { DynamicBatcher, InferenceEngine, InProcessRunner, LoadedModel, ThreadPoolRunner } from "../src/index.ts";

const repo = ModelRepository.load(DEFAULT_MODELS_DIR);

/** Deterministic pseudo-random iris-like rows. */
function rows(n: number, seed = 7): number[][] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, () => [4 + next() * 4, 2 + next() * 2.5, 1 + next() * 6, next() * 2.5]);
}
const item = (r: number[][]) => ({
  inputs: [{ name: "features", datatype: "FP32" as const, shape: [r.length, 4], data: r.flat() }],
});

describe("batched runs equal single runs", () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(repo.resolve("iris"));
  });
  afterAll(async () => {
    await model?.release();
  });

  it("element by element, with items of different row counts in one batch", async () => {
    const items = [1, 3, 1, 2, 5, 1].map((n, i) => item(rows(n, i + 1)));
    const batched = await model.run(items);
    for (let i = 0; i < items.length; i++) {
      const [single] = await model.run([items[i]!]);
      expect(batched[i]).toEqual(single);
      expect(batched[i]!.ok).toBe(true);
    }
  });
});

describe("DynamicBatcher (Triton semantics)", () => {
  it("dispatches at once when the batch is full", async () => {
    const sizes: number[] = [];
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 4,
      maxQueueDelayMs: 60_000,
      rowsOf: () => 1,
      run: async (xs) => (sizes.push(xs.length), xs.map((x) => x * 2)),
    });
    const results = await Promise.all([1, 2, 3, 4].map((x) => batcher.submit(x)));
    expect(results).toEqual([2, 4, 6, 8]);
    expect(sizes).toEqual([4]);
  });

  it("otherwise dispatches when the oldest item has waited the delay", async () => {
    const sizes: number[] = [];
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 100,
      maxQueueDelayMs: 30,
      rowsOf: () => 1,
      run: async (xs) => (sizes.push(xs.length), xs),
    });
    // The delay itself is measured on a fake clock in batcher.test.ts; here, that both went together.
    await Promise.all([batcher.submit(1), batcher.submit(2)]);
    expect(sizes).toEqual([2]);
  });

  it("never exceeds maxBatchSize rows, keeps order, and gathers while every run slot is busy", async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const batcher = new DynamicBatcher<number, number>({
      maxBatchSize: 8,
      maxQueueDelayMs: 0,
      maxInFlight: 1,
      rowsOf: (x) => (x % 3) + 1,
      run: async (xs) => {
        sizes.push(xs.reduce((n, x) => n + (x % 3) + 1, 0));
        if (sizes.length === 1) await gate;
        return xs;
      },
    });
    const inputs = Array.from({ length: 20 }, (_, i) => i);
    const pending = inputs.map((x) => batcher.submit(x));
    release();
    expect(await Promise.all(pending)).toEqual(inputs);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(8);
    expect(sizes.length).toBeLessThan(inputs.length); // items that arrived during the first run were batched
  });

  it("the engine batches concurrent submissions through a thread pool and answers each its own rows", async () => {
    const engine = new InferenceEngine(new ThreadPoolRunner(2));
    const seen: number[] = [];
    const observed = new InferenceEngine(new InProcessRunner(), { onBatch: (_m, _v, items) => seen.push(items) });
    await Promise.all([engine.load([repo.resolve("iris")]), observed.load([repo.resolve("iris")])]);
    try {
      const items = Array.from({ length: 64 }, (_, i) => item(rows(1 + (i % 3), i)));
      const [pooled, local] = await Promise.all([
        Promise.all(items.map((it) => engine.infer("iris", "1", it))),
        Promise.all(items.map((it) => observed.infer("iris", "1", it))),
      ]);
      expect(pooled).toEqual(local);
      expect(seen.length).toBeLessThan(items.length);
    } finally {
      await Promise.all([engine.close(), observed.close()]);
    }
  });
});
