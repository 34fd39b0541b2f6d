import { describe, expect, it } from "vitest";
import type { GraphSignature } from "@inferline/inference";
import { checkManifest } from "../src/models/manifest-check.ts";
import { draftManifest } from "../src/models/manifest-draft.ts";

const tabular: GraphSignature = {
  inputs: [{ name: "features", datatype: "FP32", onnxType: "float32", shape: [-1, -1] }],
  outputs: [
    { name: "label", datatype: "INT64", onnxType: "int64", shape: [-1] },
    { name: "probabilities", datatype: "FP32", onnxType: "float32", shape: [-1, 3] },
  ],
};
const base = { name: "m", version: "1", spec: { file: "m.onnx" } };

describe("draftManifest", () => {
  it("puts features on the tabular input and labels on the output they fit, fixing the dimension they name", () => {
    const { manifest } = draftManifest(tabular, { ...base, features: ["a", "b", "c", "d"], labels: ["x", "y", "z"] });
    expect(manifest.inputs).toEqual([
      { name: "features", datatype: "FP32", shape: [-1, 4], features: ["a", "b", "c", "d"] },
    ]);
    expect(manifest.outputs[1]).toEqual({
      name: "probabilities",
      datatype: "FP32",
      shape: [-1, 3],
      labels: ["x", "y", "z"],
    });
    expect(manifest.outputs[0]!.labels).toBeUndefined();
    expect(manifest.batching).toEqual({ maxBatchSize: 64, maxQueueDelayMs: 2 });
    // The draft is what the API and workers will read: it passes the manifest schema unchanged.
    expect(checkManifest(manifest, tabular).mismatches).toEqual([]);
  });

  it("refuses labels that fit no output or several, types the API cannot carry, and shapes that contradict the graph", () => {
    expect(() => draftManifest(tabular, { ...base, labels: ["x", "y"] })).toThrow(
      /2 labels fit no outputs.*--labels-for/,
    );
    expect(() => draftManifest(tabular, { ...base, labels: ["x", "y"], labelsFor: "nope" })).toThrow(
      "--labels-for names output 'nope'",
    );
    const odd: GraphSignature = {
      ...tabular,
      inputs: [{ name: "u", datatype: undefined, onnxType: "uint16", shape: [-1] }],
    };
    expect(() => draftManifest(odd, base)).toThrow("input 'u' (uint16)");
    expect(() => draftManifest(tabular, { ...base, shapes: { features: [-1, 4, 1] } })).toThrow("has rank 3");
    expect(() => draftManifest(tabular, { ...base, shapes: { x: [1] } })).toThrow("--shape names input 'x'");
  });

  it("runs one job per session run when an input's first dimension is fixed", () => {
    const fixed: GraphSignature = {
      inputs: [{ name: "x", datatype: "FP32", onnxType: "float32", shape: [1, 4] }],
      outputs: tabular.outputs,
    };
    const { manifest, notes } = draftManifest(fixed, base);
    expect(manifest.batching).toEqual({ maxBatchSize: 1, maxQueueDelayMs: 0 });
    expect(notes.join()).toContain("maxBatchSize 1");
  });
});

describe("checkManifest", () => {
  it("lets the manifest fix a dimension the graph leaves dynamic, never leave open or change one the graph fixes", () => {
    const { manifest } = draftManifest(tabular, base);
    manifest.inputs[0]!.shape = [-1, 4];
    manifest.outputs[1]!.shape = [-1, -1];
    expect(checkManifest(manifest, tabular).mismatches).toEqual([
      "output 'probabilities' dimension 1: manifest -1 (any size), the model 3 (manifest [-1,-1], model 'probabilities' FP32 [-1,3])",
    ]);
  });

  it("compares only the outputs the graph has for a model with an adapter, and not its inputs", () => {
    const { manifest } = draftManifest(tabular, base);
    const adapted = {
      ...manifest,
      preprocess: "ocr-text-line",
      inputs: [{ name: "image", datatype: "BYTES" as const, shape: [-1] }],
      outputs: [...manifest.outputs, { name: "text", datatype: "BYTES" as const, shape: [-1] }],
    };
    const result = checkManifest(adapted, tabular);
    expect(result.mismatches).toEqual([]);
    expect(result.notes.join()).toContain("'ocr-text-line' adapter");
  });
});
