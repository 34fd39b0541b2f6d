import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModelManifest } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { createTestModelRepository, LOOKUP_TABLE } from "@inferline/testing";
import {
  datatypeOf,
  denseArray,
  denseReason,
  LoadedModel,
  ortType,
  sliceRows,
  stackRows,
  type DenseSegment,
} from "../src/index.ts";

// Dense runs on a real onnxruntime session: typed arrays straight into the session, a refused run
// split down to the rows at fault. `lookup` gathers rows of a 3-row table, so an index outside
// 0..2 fails inside onnxruntime, which the manifest cannot rule out.

let fixtures: { dir: string; remove(): void };
let repo: ModelRepository;
let lookup: LoadedModel;

beforeAll(async () => {
  fixtures = createTestModelRepository();
  repo = ModelRepository.load(fixtures.dir);
  lookup = await LoadedModel.load(repo.resolve("lookup"));
});
afterAll(async () => {
  await lookup?.release();
  fixtures?.remove();
});

const rowsOf = (segment: DenseSegment): number[][] => {
  if ("error" in segment) return [];
  const values = segment.outputs[0]!;
  return Array.from({ length: segment.to - segment.from }, (_, r) =>
    Array.from(values.data as Float32Array).slice(r * 2, r * 2 + 2),
  );
};

describe("LoadedModel.runDense", () => {
  it("runs every row in one session run over views of the columns; outputs come back as typed arrays", async () => {
    const index = BigInt64Array.from([0n, 1n, 2n, 1n, 0n, 9n]); // rows = 5: the sixth element is past the rows
    const segments = await lookup.runDense({ index }, 5);
    expect(segments).toHaveLength(1);
    expect(segments[0]).toMatchObject({
      from: 0,
      to: 5,
      outputs: [{ name: "values", datatype: "FP32", rowShape: [1, 2] }],
    });
    expect("outputs" in segments[0]! && segments[0].outputs[0]!.data).toBeInstanceOf(Float32Array);
    expect(rowsOf(segments[0]!)).toEqual([0, 1, 2, 1, 0].map((i) => LOOKUP_TABLE[i]));
  });

  it("splits a refused run in halves down to the rows at fault: those fail alone, in row order", async () => {
    const index = BigInt64Array.from([0n, 1n, 7n, 2n, 1n, 0n, -9n, 2n]);
    const segments = await lookup.runDense({ index }, index.length);
    expect(segments.map((s) => [s.from, s.to, "error" in s])).toEqual([
      [0, 2, false],
      [2, 3, true],
      [3, 4, false],
      [4, 6, false],
      [6, 7, true],
      [7, 8, false],
    ]);
    expect(segments.flatMap(rowsOf)).toEqual([0, 1, 2, 1, 0, 2].map((i) => LOOKUP_TABLE[i]));
    expect("error" in segments[1]! && segments[1].error.message).toMatch(/out of data bounds/);
  });

  it("refuses a missing input column; zero rows make no run", async () => {
    await expect(lookup.runDense({}, 1)).rejects.toThrow(/needs input index/);
    expect(await lookup.runDense({ index: new BigInt64Array(0) }, 0)).toEqual([]);
  });
});

describe("denseReason", () => {
  const manifest = (
    patch: Partial<ModelManifest>,
    input: Partial<ModelManifest["inputs"][number]> = {},
  ): ModelManifest => {
    const base = repo.manifest("lookup");
    return { ...base, ...patch, inputs: [{ ...base.inputs[0]!, ...input }] };
  };

  it("says why a model cannot run dense", () => {
    expect(denseReason(repo.manifest("lookup"))).toBeUndefined();
    expect(denseReason(repo.manifest("iris"))).toBeUndefined();
    expect(denseReason(manifest({ preprocess: "ocr-text-line" }))).toBe("it has pre/post-processing steps");
    expect(denseReason(manifest({}, { shape: [4, 1] }))).toBe("input index has no dynamic batch dimension");
    expect(denseReason(manifest({}, { shape: [-1, -1] }))).toBe(
      "input index has dynamic dimensions after the batch dimension",
    );
    expect(denseReason(manifest({}, { datatype: "BYTES" }))).toBe("input index is BYTES");
  });
});

describe("the datatype map", () => {
  it("maps every numeric datatype to onnxruntime's type and the typed array holding it, and back", () => {
    const expected = {
      BOOL: ["bool", Uint8Array],
      UINT8: ["uint8", Uint8Array],
      INT8: ["int8", Int8Array],
      INT16: ["int16", Int16Array],
      INT32: ["int32", Int32Array],
      INT64: ["int64", BigInt64Array],
      FP16: ["float16", Uint16Array],
      FP32: ["float32", Float32Array],
      FP64: ["float64", Float64Array],
    } as const;
    for (const [datatype, [ort, array]] of Object.entries(expected)) {
      expect([datatype, ortType(datatype as keyof typeof expected)]).toEqual([datatype, ort]);
      expect(denseArray(datatype as keyof typeof expected, 3)).toBeInstanceOf(array);
      expect(datatypeOf(ort)).toBe(datatype);
    }
    expect(ortType("BYTES")).toBe("string");
    expect(datatypeOf("string")).toBe("BYTES");
    expect(datatypeOf("uint32")).toBeUndefined();
  });

  it("stacks v2 tensors into one tensor and slices rows back", () => {
    const stacked = stackRows([
      { name: "x", datatype: "INT64", shape: [1, 2], data: [1, 2] },
      { name: "x", datatype: "INT64", shape: [2, 2], data: [3, 4, 5, 6] },
    ]);
    expect([stacked.type, stacked.dims, [...(stacked.data as BigInt64Array)]]).toEqual([
      "int64",
      [3, 2],
      [1n, 2n, 3n, 4n, 5n, 6n],
    ]);
    expect(sliceRows("x", stacked, 1, 2)).toEqual({ name: "x", datatype: "INT64", shape: [2, 2], data: [3, 4, 5, 6] });
    const flags = stackRows([{ name: "b", datatype: "BOOL", shape: [3], data: [true, false, true] }]);
    expect(sliceRows("b", flags, 0, 3)).toEqual({ name: "b", datatype: "BOOL", shape: [3], data: [true, false, true] });
  });
});
