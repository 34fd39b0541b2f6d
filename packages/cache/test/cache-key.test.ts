import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR, Tensor, validateInputs, type FlatTensor } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { cacheKeyDigest, keyMatchesFingerprint, type CacheKeyParts } from "@inferline/cache";

// The digest a result is cached under: what must and must not change it.

const iris = ModelRepository.load(DEFAULT_MODELS_DIR).manifest("iris");

/** The inputs as the API validates them (validateInputs against iris), from the JSON text a client sent. */
function fromJson(text: string): FlatTensor {
  const checked = validateInputs(iris, [Tensor.parse(JSON.parse(text))]);
  expect(checked.faults).toEqual([]);
  return checked.value!.inputs[0]!;
}

const features = (data: number[], shape = [1, 4]): FlatTensor => ({ name: "features", datatype: "FP32", shape, data });
const base: CacheKeyParts = {
  tenantId: "t-1",
  model: "iris",
  version: "1",
  fingerprint: "f-1",
  inputs: [features([5.1, 3.5, 1.4, 0.2])],
  requestedOutputs: [],
};
const digest = (over: Partial<CacheKeyParts> = {}) => cacheKeyDigest({ ...base, ...over });

describe("cacheKeyDigest", () => {
  it("is a hex SHA-256, the same for the same parts", () => {
    expect(digest()).toMatch(/^[0-9a-f]{64}$/);
    expect(digest()).toBe(digest({ inputs: [features([5.1, 3.5, 1.4, 0.2])] }));
  });

  it("ignores key order and number spelling in the JSON text (1.0, 1, 1e0)", () => {
    const a = fromJson('{"name":"features","shape":[1,4],"datatype":"FP32","data":[1.0,2,3.50,4e0]}');
    const b = fromJson('{"datatype":"FP32","data":[1,2.0,3.5,4],"shape":[1,4],"name":"features"}');
    expect(digest({ inputs: [a] })).toBe(digest({ inputs: [b] }));
  });

  it("is the same for nested and flat data of one shape", () => {
    const nested = fromJson('{"name":"features","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}');
    const flat = fromJson('{"name":"features","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}');
    expect(digest({ inputs: [nested] })).toBe(digest({ inputs: [flat] }));
  });

  it("differs on any change of value, shape, datatype, tenant, version, fingerprint, model or requested outputs", () => {
    const d = digest();
    const others = [
      digest({ inputs: [features([5.1, 3.5, 1.4, 0.3])] }),
      digest({ inputs: [features([5.1, 3.5, 1.4, 0.2], [4, 1])] }),
      digest({ inputs: [{ ...features([5.1, 3.5, 1.4, 0.2]), datatype: "FP64" }] }),
      digest({ tenantId: "t-2" }),
      digest({ version: "2" }),
      digest({ fingerprint: "f-2" }),
      digest({ model: "iris-2" }),
      digest({ requestedOutputs: ["probabilities"] }),
    ];
    for (const other of others) expect(other).not.toBe(d);
    expect(new Set(others).size).toBe(others.length);
  });

  it("tells which fingerprint it was computed with, and no other", () => {
    expect(keyMatchesFingerprint(digest(), "f-1")).toBe(true);
    expect(keyMatchesFingerprint(digest({ fingerprint: "f-2" }), "f-2")).toBe(true);
    expect(keyMatchesFingerprint(digest(), "f-2")).toBe(false);
    expect(keyMatchesFingerprint(digest({ fingerprint: "f-2" }), "f-1")).toBe(false);
  });

  it("ignores the order (and repeats) of requested outputs", () => {
    expect(digest({ requestedOutputs: ["a", "b"] })).toBe(digest({ requestedOutputs: ["b", "a", "b"] }));
  });

  it("ignores the order of input tensors (they are named)", () => {
    const x: FlatTensor = { name: "x", datatype: "INT64", shape: [1, 1], data: [2] };
    const y: FlatTensor = { name: "y", datatype: "FP32", shape: [1], data: [0.5] };
    expect(digest({ inputs: [x, y] })).toBe(digest({ inputs: [y, x] }));
    expect(digest({ inputs: [x, y] })).not.toBe(
      digest({
        inputs: [
          { ...x, name: "y" },
          { ...y, name: "x" },
        ],
      }),
    );
  });
});
