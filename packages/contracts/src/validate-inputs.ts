import { canonicalElement, elementExpectation, type TensorElement } from "./datatypes.ts";
import { imageLimitFault, readImageHeader, type ImageLimits } from "./image-header.ts";
import type { ModelManifest, TensorSpec } from "./manifest.ts";
import { elementCount, flattenData, type FlatTensor, type Tensor } from "./tensor.ts";
import type { FieldFault } from "./errors.ts";

export interface ValidatedInputs {
  inputs: FlatTensor[];
  /** Rows along the batch dimension (1 when the model has no dynamic batch dimension). */
  rows: number;
}

function checkShape(spec: TensorSpec, shape: number[], base: string, faults: FieldFault[]): void {
  if (shape.length !== spec.shape.length) {
    faults.push({
      path: `${base}/shape`,
      message: `must have ${spec.shape.length} dimensions like [${spec.shape.join(", ")}], got [${shape.join(", ")}]`,
    });
    return;
  }
  spec.shape.forEach((dim, i) => {
    if (dim !== -1 && shape[i] !== dim)
      faults.push({ path: `${base}/shape/${i}`, message: `must be ${dim}, got ${shape[i]}` });
  });
}

function checkData(spec: TensorSpec, tensor: Tensor, base: string, faults: FieldFault[]): FlatTensor | undefined {
  const flat = flattenData(tensor.data, tensor.shape);
  if (!flat) {
    faults.push({ path: `${base}/data`, message: `nested data does not match shape [${tensor.shape.join(", ")}]` });
    return undefined;
  }
  const expected = elementCount(tensor.shape);
  if (flat.length !== expected) {
    faults.push({
      path: `${base}/data`,
      message: `has ${flat.length} elements; shape [${tensor.shape.join(", ")}] needs ${expected}`,
    });
    return undefined;
  }
  // Elements in canonical form (see DATATYPES); the request's own array is copied only when one changes.
  let data = flat;
  for (let i = 0; i < flat.length; i++) {
    const element = canonicalElement(spec.datatype, flat[i]);
    if (element === undefined) {
      faults.push({
        path: `${base}/data/${i}`,
        message: `${elementExpectation(spec.datatype)} (datatype ${spec.datatype})`,
      });
      return undefined;
    }
    if (element !== flat[i]) {
      if (data === flat) data = flat.slice();
      data[i] = element;
    }
  }
  if (spec.image && spec.datatype === "BYTES" && !checkImages(spec.image, data, base, faults)) return undefined;
  return { name: tensor.name, shape: tensor.shape, datatype: tensor.datatype, data };
}

/** Whether every image (base64) is within `limits` by its header; an image whose header this cannot read is left to the worker. */
function checkImages(limits: ImageLimits, data: TensorElement[], base: string, faults: FieldFault[]): boolean {
  for (let i = 0; i < data.length; i++) {
    const header = readImageHeader(Buffer.from(data[i] as string, "base64"));
    const fault = header && imageLimitFault(header, limits);
    if (fault) {
      faults.push({ path: `${base}/data/${i}`, message: fault });
      return false;
    }
  }
  return true;
}

/**
 * Checks request tensors against the model's manifest: every input present once, known names,
 * datatypes, shapes (with -1 dynamic), element counts and element types, and one batch size
 * across inputs. Faults carry JSON Pointers relative to `pointer` (the inputs array).
 */
export function validateInputs(
  manifest: ModelManifest,
  tensors: Tensor[],
  pointer = "/inputs",
): { value?: ValidatedInputs; faults: FieldFault[] } {
  const faults: FieldFault[] = [];
  const specs = new Map(manifest.inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const out: FlatTensor[] = [];
  tensors.forEach((tensor, index) => {
    const base = `${pointer}/${index}`;
    const spec = specs.get(tensor.name);
    if (!spec)
      return void faults.push({
        path: `${base}/name`,
        message: `unknown input ${JSON.stringify(tensor.name)}; the model takes ${[...specs.keys()].join(", ")}`,
      });
    if (seen.has(tensor.name))
      return void faults.push({ path: `${base}/name`, message: `input ${JSON.stringify(tensor.name)} given twice` });
    seen.add(tensor.name);
    if (tensor.datatype !== spec.datatype)
      return void faults.push({
        path: `${base}/datatype`,
        message: `must be ${spec.datatype}, got ${tensor.datatype}`,
      });
    const before = faults.length;
    checkShape(spec, tensor.shape, base, faults);
    if (faults.length > before) return;
    const flat = checkData(spec, tensor, base, faults);
    if (flat) out.push(flat);
  });
  for (const name of specs.keys()) {
    if (!seen.has(name)) faults.push({ path: pointer, message: `missing input ${JSON.stringify(name)}` });
  }
  if (faults.length > 0) return { faults };
  const batched = manifest.inputs[0]?.shape[0] === -1;
  const rows = batched ? (out[0]?.shape[0] ?? 1) : 1;
  if (batched && out.some((t) => t.shape[0] !== rows)) {
    return { faults: [{ path: pointer, message: "all inputs must have the same size along the batch dimension" }] };
  }
  if (rows === 0) return { faults: [{ path: `${pointer}/0/shape/0`, message: "batch dimension must be at least 1" }] };
  if (rows > manifest.maxRowsPerJob) {
    return {
      faults: [
        {
          path: `${pointer}/0/shape/0`,
          message: `at most ${manifest.maxRowsPerJob} rows per job for model ${manifest.name}, got ${rows}; send more rows as a batch`,
        },
      ],
    };
  }
  return { value: { inputs: out, rows }, faults };
}

export function validateOutputNames(
  manifest: ModelManifest,
  outputs: { name: string }[] | undefined,
  pointer = "/outputs",
): FieldFault[] {
  const known = new Set(manifest.outputs.map((o) => o.name));
  return (outputs ?? []).flatMap((o, i) =>
    known.has(o.name)
      ? []
      : [
          {
            path: `${pointer}/${i}/name`,
            message: `unknown output ${JSON.stringify(o.name)}; the model gives ${[...known].join(", ")}`,
          },
        ],
  );
}
