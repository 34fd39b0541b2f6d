import { ModelManifest, type ModelVersionSpec, type TensorSpec } from "@inferline/contracts";
import type { GraphSignature, GraphTensor } from "@inferline/inference";
import { UsageError } from "../score/types.ts";
import { describeTensor } from "./tensor-text.ts";

export interface DraftOptions {
  name: string;
  version: string;
  /** Where the version's ONNX file is (in the model's folder, elsewhere, or inside an npm package). */
  spec: Omit<ModelVersionSpec, "version">;
  /** Class names of the classifier output, by index along its last dimension. */
  labels?: string[];
  /** The output the labels belong to; default: the one output they fit. */
  labelsFor?: string;
  /** Column names of the tabular input, in order. */
  features?: string[];
  /** The input the features belong to; default: the one input they fit. */
  featuresFor?: string;
  /** Dimensions to pin where the graph leaves them dynamic (`--shape x=-1,3,48,192`), by input name. */
  shapes?: Record<string, number[]>;
  description?: string;
}

export interface Draft {
  manifest: ModelManifest;
  /** Things worth knowing that do not stop the manifest from being written. */
  notes: string[];
}

/**
 * The manifest of a model as its graph declares it: every input and output with its datatype and
 * shape (symbolic dimensions as -1), labels on the classifier output and features on the tabular
 * input when given, and batching that stacks jobs along the first dimension when every input's
 * first dimension is dynamic (else one job per run). Throws UsageError for what no manifest can
 * express or what the options contradict.
 */
export function draftManifest(signature: GraphSignature, options: DraftOptions): Draft {
  const notes: string[] = [];
  const unsupported = [
    ...signature.inputs.map((t) => ["input", t] as const),
    ...signature.outputs.map((t) => ["output", t] as const),
  ].filter(([, t]) => !t.datatype);
  if (unsupported.length > 0) {
    throw new UsageError(
      `the model has tensors of types the API cannot carry: ${unsupported.map(([kind, t]) => `${kind} '${t.name}' (${t.onnxType})`).join(", ")}`,
    );
  }
  if (signature.inputs.length === 0 || signature.outputs.length === 0)
    throw new UsageError("the model declares no inputs or no outputs");
  const inputs: TensorSpec[] = signature.inputs.map((t) => ({
    name: t.name,
    datatype: t.datatype!,
    shape: pinned(t, options.shapes?.[t.name]),
  }));
  for (const name of Object.keys(options.shapes ?? {})) {
    if (!signature.inputs.some((t) => t.name === name))
      throw new UsageError(
        `--shape names input '${name}'; the model has ${signature.inputs.map(describeTensor).join(", ")}`,
      );
  }
  const outputs: TensorSpec[] = signature.outputs.map((t) => ({
    name: t.name,
    datatype: t.datatype!,
    shape: [...t.shape],
  }));

  if (options.features) {
    const input = pick(inputs, options.features.length, options.featuresFor, "--features", "input");
    if (input.shape.length !== 2)
      throw new UsageError(
        `--features needs a tabular input of rank 2 ([rows, features]); '${input.name}' has shape [${input.shape.join(",")}]`,
      );
    input.features = options.features;
    // The features name the columns, so they fix how many there are.
    input.shape[1] = options.features.length;
  }
  if (options.labels) {
    const output = pick(outputs, options.labels.length, options.labelsFor, "--labels", "output");
    if (output.shape.length < 2)
      throw new UsageError(
        `--labels needs an output with a class dimension ([rows, …, classes]); '${output.name}' has shape [${output.shape.join(",")}]`,
      );
    output.labels = options.labels;
    output.shape[output.shape.length - 1] = options.labels.length;
  }
  for (const input of inputs) {
    if (input.datatype === "BYTES")
      notes.push(
        `input '${input.name}' is BYTES (strings): requests give each element as the base64 of its UTF-8 text`,
      );
  }

  const batchable = inputs.every((i) => i.shape.length > 0 && i.shape[0] === -1);
  if (!batchable)
    notes.push("not every input's first dimension is dynamic: jobs run one per session run (batching.maxBatchSize 1)");
  const manifest = ModelManifest.parse({
    name: options.name,
    description: options.description,
    versions: [{ version: options.version, ...options.spec }],
    inputs,
    outputs,
    batching: batchable ? { maxBatchSize: 64, maxQueueDelayMs: 2 } : { maxBatchSize: 1, maxQueueDelayMs: 0 },
  });
  return { manifest, notes };
}

/** The graph's shape with `--shape` applied: a pinned dimension must be one the graph leaves dynamic, or equal to the graph's. */
function pinned(tensor: GraphTensor, shape: number[] | undefined): number[] {
  if (!shape) return [...tensor.shape];
  if (shape.length !== tensor.shape.length)
    throw new UsageError(
      `--shape ${tensor.name}=${shape.join(",")} has rank ${shape.length}; the model's ${describeTensor(tensor)} has rank ${tensor.shape.length}`,
    );
  return shape.map((d, i) => {
    const graph = tensor.shape[i]!;
    if (graph !== -1 && d !== graph)
      throw new UsageError(
        `--shape ${tensor.name}=${shape.join(",")}: dimension ${i} is ${graph} in the model, not ${d}`,
      );
    return d;
  });
}

/** The tensor that `count` names belong to: the one named by `explicit`, else the only tensor, else the only one of rank 2 or more whose last dimension is `count` (or dynamic, if none is). */
function pick(
  tensors: TensorSpec[],
  count: number,
  explicit: string | undefined,
  flag: string,
  kind: string,
): TensorSpec {
  const list = tensors.map((t) => `'${t.name}' [${t.shape.join(",")}]`).join(", ");
  let chosen: TensorSpec | undefined;
  if (explicit) {
    chosen = tensors.find((t) => t.name === explicit);
    if (!chosen) throw new UsageError(`${flag}-for names ${kind} '${explicit}'; the model has ${list}`);
  } else if (tensors.length === 1) {
    chosen = tensors[0];
  } else {
    // Names count along a dimension after the batch dimension: only tensors of rank 2 or more qualify.
    const ranked = tensors.filter((t) => t.shape.length >= 2);
    const exact = ranked.filter((t) => t.shape[t.shape.length - 1] === count);
    const open = ranked.filter((t) => t.shape[t.shape.length - 1] === -1);
    const candidates = exact.length > 0 ? exact : open;
    if (candidates.length !== 1)
      throw new UsageError(
        `${count} ${flag.slice(2)} fit ${candidates.length === 0 ? "no" : `${candidates.length}`} ${kind}s of ${list}; name one with ${flag}-for`,
      );
    chosen = candidates[0];
  }
  const last = chosen!.shape[chosen!.shape.length - 1];
  if (last !== undefined && last !== -1 && last !== count) {
    throw new UsageError(
      `${count} ${flag.slice(2)} for ${kind} '${chosen!.name}', whose last dimension is ${last} ([${chosen!.shape.join(",")}])`,
    );
  }
  return chosen!;
}
