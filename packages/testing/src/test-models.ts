import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import onnxProto from "onnx-proto";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";

const { onnx } = onnxProto;

/** Rows of the `lookup` model's table: index i returns LOOKUP_TABLE[i]. */
export const LOOKUP_TABLE = [
  [0.5, 1.5],
  [2.5, 3.5],
  [4.5, 5.5],
];

/**
 * A Gather over a 3-row table: a real ONNX model that fails at run time (inside onnxruntime) for
 * an index outside the table, which the manifest cannot rule out. Tests use it for model errors
 * and for one bad item in a batch.
 */
function lookupModel(): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "lookup",
      input: [{ name: "index", type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimParam: "batch" }, { dimValue: 1 }] } } } }],
      output: [{ name: "values", type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: "batch" }, { dimValue: 1 }, { dimValue: 2 }] } } } }],
      initializer: [{ name: "table", dataType: onnx.TensorProto.DataType.FLOAT, dims: [3, 2], floatData: LOOKUP_TABLE.flat() }],
      node: [{ name: "gather", opType: "Gather", input: ["table", "index"], output: ["values"], attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }] }],
    },
  });
  return Uint8Array.from(onnx.ModelProto.encode(model).finish());
}

/** A model repository in a temp dir: the real iris model plus the `lookup` test model. */
export function createTestModelRepository(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-models-"));
  fs.cpSync(path.join(DEFAULT_MODELS_DIR, "iris"), path.join(dir, "iris"), { recursive: true, filter: (src) => !src.endsWith(".ts") });
  fs.mkdirSync(path.join(dir, "lookup"));
  fs.writeFileSync(path.join(dir, "lookup", "lookup.onnx"), lookupModel());
  fs.writeFileSync(
    path.join(dir, "lookup", "model.json"),
    JSON.stringify({
      name: "lookup",
      description: "test model: Gather over a 3-row table; an index out of range fails inside onnxruntime",
      versions: [{ version: "1", file: "lookup.onnx" }],
      inputs: [{ name: "index", datatype: "INT64", shape: [-1, 1] }],
      outputs: [{ name: "values", datatype: "FP32", shape: [-1, 1, 2] }],
      batching: { maxBatchSize: 64, maxQueueDelayMs: 20 },
    }),
  );
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
