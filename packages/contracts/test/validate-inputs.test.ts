import { describe, expect, it } from "vitest";
import { ModelManifest } from "../src/manifest.ts";
import type { Datatype } from "../src/datatypes.ts";
import type { Tensor } from "../src/tensor.ts";
import { validateInputs, validateOutputNames } from "../src/validate-inputs.ts";

function manifest(
  inputs: Array<{ name: string; datatype: Datatype; shape: number[] }>,
  maxRowsPerJob?: number,
): ModelManifest {
  return ModelManifest.parse({
    name: "m",
    versions: [{ version: "1", file: "m.onnx" }],
    inputs,
    outputs: [{ name: "out", datatype: "FP32", shape: [-1, 1] }],
    maxRowsPerJob,
  });
}
const tensor = (name: string, datatype: Datatype, shape: number[], data: unknown[]): Tensor => ({
  name,
  datatype,
  shape,
  data,
});

/** One input of the given datatype, batched, one element per row. */
const single = (datatype: Datatype) => manifest([{ name: "x", datatype, shape: [-1, 1] }]);
const check = (datatype: Datatype, value: unknown) =>
  validateInputs(single(datatype), [tensor("x", datatype, [1, 1], [value])]);
const pathsOf = (r: { faults: Array<{ path: string }> }) => r.faults.map((f) => f.path);

describe("validateInputs: element types per datatype", () => {
  it.each<[Datatype, unknown]>([
    ["BOOL", true],
    ["BOOL", false],
    ["BYTES", "aGVsbG8="],
    ["BYTES", ""],
    ["FP16", 0.5],
    ["FP32", -1.25e10],
    ["FP64", Number.MAX_VALUE],
    ["UINT8", 0],
    ["UINT8", 255],
    ["INT8", -128],
    ["INT8", 127],
    ["INT16", -32768],
    ["INT16", 32767],
    ["INT32", -2147483648],
    ["INT32", 2147483647],
    ["INT64", Number.MAX_SAFE_INTEGER],
    ["INT64", Number.MIN_SAFE_INTEGER],
  ])("%s accepts %j", (datatype, value) => {
    const result = check(datatype, value);
    expect(result.faults).toEqual([]);
    expect(result.value?.inputs[0]?.data).toEqual([value]);
  });

  it.each<[Datatype, unknown, RegExp]>([
    ["BOOL", 1, /boolean/],
    ["BOOL", "true", /boolean/],
    ["BYTES", "not base64!", /base64/],
    ["BYTES", 12, /base64/],
    ["FP32", "1.5", /finite number/],
    ["FP32", Number.NaN, /finite number/],
    ["FP64", Number.POSITIVE_INFINITY, /finite number/],
    ["FP16", null, /finite number/],
    ["FP32", true, /finite number/],
    ["UINT8", 256, /UINT8 range/],
    ["UINT8", -1, /UINT8 range/],
    ["INT8", 128, /INT8 range/],
    ["INT8", 1.5, /INT8 range/],
    ["INT16", 32768, /INT16 range/],
    ["INT32", 2147483648, /INT32 range/],
    ["INT32", -2147483649, /INT32 range/],
    ["INT64", Number.MAX_SAFE_INTEGER + 1, /INT64 range.*decimal string/],
    ["INT64", "9223372036854775808", /INT64 range/],
    ["INT64", "-9223372036854775809", /INT64 range/],
    ["INT64", "1.5", /INT64 range/],
    ["INT64", "0x10", /INT64 range/],
    ["INT64", " 5", /INT64 range/],
    ["INT64", "", /INT64 range/],
    ["INT64", "1".repeat(21), /INT64 range/],
    ["UINT8", "256", /UINT8 range/],
    ["FP16", 65520, /FP16 range \(±65504\)/],
    ["FP16", -1e6, /FP16 range/],
    ["FP32", 3.5e38, /FP32 range/],
  ])("%s refuses %j", (datatype, value, message) => {
    const result = check(datatype, value);
    expect(result.value).toBeUndefined();
    expect(result.faults).toEqual([{ path: "/inputs/0/data/0", message: expect.stringMatching(message) }]);
    expect(result.faults[0]!.message).toContain(`datatype ${datatype}`);
  });

  it.each<[Datatype, unknown, unknown]>([
    ["INT64", "9007199254740993", "9007199254740993"],
    ["INT64", "-9223372036854775808", "-9223372036854775808"],
    ["INT64", "9223372036854775807", "9223372036854775807"],
    ["INT64", "-9007199254740991", -9007199254740991],
    ["INT64", "0042", 42],
    ["INT8", "-128", -128],
    ["UINT8", "255", 255],
    ["FP16", 65519, 65519],
    ["FP32", 3.4028235e38, 3.4028235e38],
  ])(
    "%s takes %j as %j: integers past ±(2^53-1) stay decimal strings, the rest become numbers",
    (datatype, value, canonical) => {
      const result = check(datatype, value);
      expect(result.faults).toEqual([]);
      expect(result.value?.inputs[0]?.data).toEqual([canonical]);
    },
  );

  it("copies the request's data only when an element changes form", () => {
    const data = [1, "2", "9007199254740993"];
    const given = tensor("x", "INT64", [1, 3], data);
    const result = validateInputs(manifest([{ name: "x", datatype: "INT64", shape: [-1, 3] }]), [given]);
    expect(result.value?.inputs[0]?.data).toEqual([1, 2, "9007199254740993"]);
    expect(data).toEqual([1, "2", "9007199254740993"]);
    const numbers = [1, 2, 3];
    expect(
      validateInputs(manifest([{ name: "x", datatype: "INT64", shape: [-1, 3] }]), [
        tensor("x", "INT64", [1, 3], numbers),
      ]).value?.inputs[0]?.data,
    ).toBe(numbers);
  });

  it("names the first bad element by its flat index, nested data too", () => {
    const m = manifest([{ name: "x", datatype: "INT32", shape: [-1, 3] }]);
    expect(pathsOf(validateInputs(m, [tensor("x", "INT32", [2, 3], [1, 2, 3, 4, 5.5, "x"])]))).toEqual([
      "/inputs/0/data/4",
    ]);
    expect(
      pathsOf(
        validateInputs(m, [
          tensor(
            "x",
            "INT32",
            [2, 3],
            [
              [1, 2, 3],
              [4, 5, "x"],
            ],
          ),
        ]),
      ),
    ).toEqual(["/inputs/0/data/5"]);
  });
});

describe("validateInputs: shapes", () => {
  const iris = manifest([{ name: "features", datatype: "FP32", shape: [-1, 4] }]);

  it("accepts any size where the manifest says -1, and counts rows along the batch dimension", () => {
    for (const rows of [1, 2, 7]) {
      const result = validateInputs(iris, [tensor("features", "FP32", [rows, 4], Array(rows * 4).fill(0.5))]);
      expect(result.faults).toEqual([]);
      expect(result.value?.rows).toBe(rows);
    }
    const text = manifest([{ name: "tokens", datatype: "INT64", shape: [1, -1] }]);
    expect(validateInputs(text, [tensor("tokens", "INT64", [1, 5], [1, 2, 3, 4, 5])]).value).toEqual({
      rows: 1,
      inputs: [{ name: "tokens", datatype: "INT64", shape: [1, 5], data: [1, 2, 3, 4, 5] }],
    });
  });

  it("refuses another rank at /shape, and another fixed size at the dimension", () => {
    expect(validateInputs(iris, [tensor("features", "FP32", [4], [1, 2, 3, 4])]).faults).toEqual([
      { path: "/inputs/0/shape", message: expect.stringContaining("2 dimensions") },
    ]);
    expect(validateInputs(iris, [tensor("features", "FP32", [1, 3], [1, 2, 3])]).faults).toEqual([
      { path: "/inputs/0/shape/1", message: "must be 4, got 3" },
    ]);
  });

  it("refuses data whose element count does not match the shape", () => {
    expect(validateInputs(iris, [tensor("features", "FP32", [2, 4], [1, 2, 3, 4])]).faults).toEqual([
      { path: "/inputs/0/data", message: "has 4 elements; shape [2, 4] needs 8" },
    ]);
  });

  it("flattens nested data, and refuses ragged nesting or nesting the shape does not describe", () => {
    const nested = validateInputs(iris, [
      tensor(
        "features",
        "FP32",
        [2, 4],
        [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
        ],
      ),
    ]);
    expect(nested.value?.inputs[0]?.data).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const data of [
      [
        [1, 2, 3, 4],
        [5, 6],
      ],
      [[1, 2, 3, 4, 5, 6, 7, 8]],
      [[[1, 2, 3, 4]], [[5, 6, 7, 8]]],
    ]) {
      expect(validateInputs(iris, [tensor("features", "FP32", [2, 4], data)]).faults).toEqual([
        { path: "/inputs/0/data", message: expect.stringContaining("nested data does not match shape [2, 4]") },
      ]);
    }
  });
});

describe("validateInputs: inputs present once", () => {
  const pair = manifest([
    { name: "ids", datatype: "INT64", shape: [-1, 2] },
    { name: "mask", datatype: "BOOL", shape: [-1, 2] },
  ]);
  const ids = (rows = 1) => tensor("ids", "INT64", [rows, 2], Array(rows * 2).fill(1));
  const mask = (rows = 1) => tensor("mask", "BOOL", [rows, 2], Array(rows * 2).fill(true));

  it("accepts every input once, in any order", () => {
    expect(validateInputs(pair, [mask(2), ids(2)]).value?.rows).toBe(2);
  });

  it("names a missing input at the inputs array", () => {
    expect(validateInputs(pair, [ids()]).faults).toEqual([{ path: "/inputs", message: 'missing input "mask"' }]);
    expect(validateInputs(pair, []).faults.map((f) => f.message)).toEqual([
      'missing input "ids"',
      'missing input "mask"',
    ]);
  });

  it("names a duplicate and an unknown input at their name", () => {
    expect(validateInputs(pair, [ids(), mask(), ids()]).faults).toEqual([
      { path: "/inputs/2/name", message: 'input "ids" given twice' },
    ]);
    const unknown = validateInputs(pair, [ids(), mask(), tensor("extra", "FP32", [1], [1])]).faults;
    expect(unknown).toEqual([
      { path: "/inputs/2/name", message: expect.stringContaining('unknown input "extra"; the model takes ids, mask') },
    ]);
  });

  it("names a datatype the manifest does not give the input", () => {
    expect(validateInputs(pair, [tensor("ids", "INT32", [1, 2], [1, 1]), mask()]).faults).toEqual([
      { path: "/inputs/0/datatype", message: "must be INT64, got INT32" },
    ]);
  });

  it("reports the faults of every input together, under the given pointer", () => {
    const result = validateInputs(
      pair,
      [tensor("ids", "INT64", [1, 3], [1, 1, 1]), tensor("mask", "BOOL", [1, 2], [true, 0])],
      "/items/4/inputs",
    );
    expect(pathsOf(result)).toEqual(["/items/4/inputs/0/shape/1", "/items/4/inputs/1/data/1"]);
  });
});

describe("validateInputs: the batch dimension", () => {
  const pair = manifest(
    [
      { name: "a", datatype: "FP32", shape: [-1, 1] },
      { name: "b", datatype: "FP32", shape: [-1] },
    ],
    3,
  );

  it("needs the same size along it in every input", () => {
    const result = validateInputs(pair, [tensor("a", "FP32", [2, 1], [1, 2]), tensor("b", "FP32", [3], [1, 2, 3])]);
    expect(result.faults).toEqual([
      { path: "/inputs", message: "all inputs must have the same size along the batch dimension" },
    ]);
  });

  it("needs at least one row", () => {
    const result = validateInputs(pair, [tensor("a", "FP32", [0, 1], []), tensor("b", "FP32", [0], [])]);
    expect(result.faults).toEqual([{ path: "/inputs/0/shape/0", message: "batch dimension must be at least 1" }]);
  });

  it("takes at most maxRowsPerJob rows", () => {
    expect(
      validateInputs(pair, [tensor("a", "FP32", [3, 1], [1, 2, 3]), tensor("b", "FP32", [3], [1, 2, 3])]).value?.rows,
    ).toBe(3);
    const over = validateInputs(
      pair,
      [tensor("a", "FP32", [4, 1], [1, 2, 3, 4]), tensor("b", "FP32", [4], [1, 2, 3, 4])],
      "/items/0/inputs",
    );
    expect(over.faults).toEqual([
      {
        path: "/items/0/inputs/0/shape/0",
        message: expect.stringContaining("at most 3 rows per job for model m, got 4"),
      },
    ]);
  });

  it("counts one row for a model without a dynamic first dimension, whatever its first size", () => {
    const fixed = manifest([{ name: "image", datatype: "UINT8", shape: [3, 2] }], 1);
    const result = validateInputs(fixed, [tensor("image", "UINT8", [3, 2], [1, 2, 3, 4, 5, 6])]);
    expect(result.faults).toEqual([]);
    expect(result.value?.rows).toBe(1);
  });
});

describe("validateOutputNames", () => {
  const m = manifest([{ name: "x", datatype: "FP32", shape: [-1, 1] }]);

  it("accepts known outputs or none, and names each unknown one", () => {
    expect(validateOutputNames(m, undefined)).toEqual([]);
    expect(validateOutputNames(m, [{ name: "out" }])).toEqual([]);
    expect(validateOutputNames(m, [{ name: "out" }, { name: "nope" }], "/items/1/outputs")).toEqual([
      { path: "/items/1/outputs/1/name", message: 'unknown output "nope"; the model gives out' },
    ]);
  });
});
