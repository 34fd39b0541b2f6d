import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Datatype, type FlatTensor, type InferenceResult } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { createTestModelRepository, DATATYPE_SAMPLES, ECHO_WIDTH, echoModelName } from "@inferline/testing";
import {
  DENSE_DATATYPES,
  denseArray,
  InferenceEngine,
  InProcessRunner,
  jsonElements,
  LoadedModel,
  setDenseElement,
  ThreadPoolRunner,
  type NumericDatatype,
} from "../src/index.ts";

// Every datatype through real onnxruntime sessions of echo models built here with onnx-proto: `y`
// is the input as it is (Identity), `seen` the input cast to strings, i.e. what the model was given.

let fixtures: { dir: string; remove(): void };
let repo: ModelRepository;
const models = () => Datatype.options.map((d) => repo.resolve(echoModelName(d)));

beforeAll(() => {
  fixtures = createTestModelRepository({ echoModels: true });
  repo = ModelRepository.load(fixtures.dir);
});
afterAll(() => fixtures?.remove());

const text = (base64: unknown): string => Buffer.from(base64 as string, "base64").toString("utf8");

/** Two items of one row each: the sample row, and the same row reversed (so rows are stacked and cut back). */
function items(datatype: Datatype): Array<{ inputs: FlatTensor[] }> {
  const row = DATATYPE_SAMPLES[datatype].input;
  return [row, [...row].reverse()].map((data) => ({ inputs: [{ name: "x", datatype, shape: [1, ECHO_WIDTH], data }] }));
}

function expectEcho(datatype: Datatype, result: InferenceResult, reversed: boolean): void {
  const sample = DATATYPE_SAMPLES[datatype];
  const order = <T>(values: T[]): T[] => (reversed ? [...values].reverse() : values);
  const [y, seen] = [result.outputs.find((o) => o.name === "y")!, result.outputs.find((o) => o.name === "seen")!];
  expect(y).toEqual({ name: "y", datatype, shape: [1, ECHO_WIDTH], data: order(sample.y) });
  expect(seen.datatype).toBe("BYTES");
  expect(seen.data.map(text)).toEqual(order(sample.seen));
}

describe.each([
  ["on the worker's main thread", () => new InProcessRunner()],
  ["in a pool thread", () => new ThreadPoolRunner(1)],
])("every datatype through InferenceEngine, %s", (_where, runner) => {
  let engine: InferenceEngine;
  beforeAll(async () => {
    engine = new InferenceEngine(runner());
    await engine.load(models());
  });
  afterAll(async () => {
    await engine?.close();
  });

  it.each(Datatype.options)(
    "%s goes in and comes back exactly, and the model sees the values sent",
    async (datatype) => {
      const outcomes = await Promise.all(
        items(datatype).map((item) => engine.infer(echoModelName(datatype), "1", item)),
      );
      outcomes.forEach((outcome, i) => {
        if (!outcome.ok) throw new Error(`${datatype}: ${outcome.code}: ${outcome.message}`);
        expectEcho(datatype, outcome.result, i === 1);
      });
    },
  );
});

describe("BYTES elements onnxruntime's string tensors cannot hold", () => {
  let bytes: LoadedModel;
  beforeAll(async () => {
    bytes = await LoadedModel.load(repo.resolve(echoModelName("BYTES")));
  });
  afterAll(async () => {
    await bytes?.release();
  });

  it("fail their own item as invalid_input (not UTF-8, or a NUL that would cut the text short); the others run", async () => {
    const row = (data: string[]) => ({
      inputs: [{ name: "x", datatype: "BYTES" as const, shape: [1, ECHO_WIDTH], data }],
    });
    const good = DATATYPE_SAMPLES.BYTES.input as string[];
    const notUtf8 = Buffer.from([0xff, 0xfe]).toString("base64");
    const nul = Buffer.from("a\0b").toString("base64");
    const [ok, binary, withNul] = await bytes.run([
      row(good),
      row([notUtf8, ...good.slice(1)]),
      row([nul, ...good.slice(1)]),
    ]);
    expect(ok).toMatchObject({ ok: true });
    expect(binary).toMatchObject({ ok: false, code: "invalid_input", message: expect.stringContaining("not UTF-8") });
    expect(withNul).toMatchObject({ ok: false, code: "invalid_input", message: expect.stringContaining("NUL") });
  });
});

describe("every dense datatype through LoadedModel.runDense (the CLI's local scoring)", () => {
  const dense = Datatype.options.filter((d): d is NumericDatatype => DENSE_DATATYPES.has(d));

  it("covers every datatype a typed array holds", () => {
    expect(dense).toEqual(Datatype.options.filter((d) => d !== "BYTES"));
  });

  it.each(dense)("%s: typed arrays filled from JSON elements come back as the same elements", async (datatype) => {
    const model = await LoadedModel.load(repo.resolve(echoModelName(datatype)));
    try {
      const sample = DATATYPE_SAMPLES[datatype];
      const column = denseArray(datatype, ECHO_WIDTH);
      sample.input.forEach((v, i) => setDenseElement(datatype, column, i, v));
      // The CLI's remote mode sends a column as JSON elements: the values the datatype holds.
      expect(jsonElements(datatype, column, 0, ECHO_WIDTH)).toEqual(sample.y);
      const [segment] = await model.runDense({ x: column }, 1);
      if (!segment || "error" in segment) throw new Error(`${datatype}: the dense run failed`);
      const [y, seen] = segment.outputs;
      expect([y!.datatype, seen!.datatype]).toEqual([datatype, "BYTES"]);
      expect(Array.from(seen!.data, text)).toEqual(sample.seen);
      // FP16 comes as float32 values; every other type as onnxruntime's own array.
      const values = datatype === "FP16" ? Array.from(y!.data) : jsonElements(datatype, y!.data, 0, ECHO_WIDTH);
      expect(values).toEqual(sample.y);
    } finally {
      await model.release();
    }
  });
});
