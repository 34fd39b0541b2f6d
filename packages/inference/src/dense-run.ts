import type * as ort from "onnxruntime-node";
import { elementCount, type Datatype, type ModelManifest } from "@inferline/contracts";
import {
  DENSE_DATATYPES,
  denseOutputData,
  denseTensor,
  outputDatatype,
  type DenseArray,
  type NumericDatatype,
} from "./tensors.ts";

/**
 * Why a model cannot run dense, or undefined when it can. A dense run feeds the session typed
 * arrays as they are, so the model needs no pre/post-processing, a dynamic batch dimension first
 * and a fixed shape after it, and datatypes that typed arrays hold (every one but BYTES).
 */
export function denseReason(manifest: ModelManifest): string | undefined {
  if (manifest.preprocess || manifest.postprocess) return "it has pre/post-processing steps";
  for (const spec of manifest.inputs) {
    if (spec.shape[0] !== -1) return `input ${spec.name} has no dynamic batch dimension`;
    if (spec.shape.slice(1).some((d) => d < 1))
      return `input ${spec.name} has dynamic dimensions after the batch dimension`;
    if (!DENSE_DATATYPES.has(spec.datatype)) return `input ${spec.name} is ${spec.datatype}`;
  }
  return undefined;
}

/**
 * One output over the rows of a segment: `rowShape` elements per row, row-major, as
 * denseOutputData gives them (typed arrays as the session returns them, FP16 as float32 values,
 * BYTES as base64 strings).
 */
export interface DenseOutput {
  name: string;
  datatype: Datatype;
  data: ArrayLike<number | bigint | string>;
  rowShape: number[];
}

/**
 * Rows [from, to) of a dense run: their outputs, or (one row alone) why the session refused it.
 * Segments come in row order and cover every row once.
 */
export type DenseSegment =
  { from: number; to: number; outputs: DenseOutput[] } | { from: number; to: number; error: Error };

type SessionRun = (
  feeds: Record<string, ort.Tensor>,
  outputs: readonly string[],
) => Promise<ort.InferenceSession.OnnxValueMapType>;

/**
 * Runs `rows` rows of a dense model as one session run over views of `columns` (one typed array
 * per input, by name, `rows × row size` elements; nothing is copied). A run the session refuses
 * is split in halves, down to the rows at fault, so that one bad row fails alone.
 */
export async function runDense(
  manifest: ModelManifest,
  run: SessionRun,
  columns: Readonly<Record<string, DenseArray>>,
  rows: number,
): Promise<DenseSegment[]> {
  const reason = denseReason(manifest);
  if (reason) throw new Error(`model ${manifest.name} cannot run dense: ${reason}`);
  const segments: DenseSegment[] = [];
  if (rows > 0) await runRows(manifest, run, columns, 0, rows, segments);
  return segments;
}

async function runRows(
  manifest: ModelManifest,
  run: SessionRun,
  columns: Readonly<Record<string, DenseArray>>,
  from: number,
  to: number,
  segments: DenseSegment[],
): Promise<void> {
  const names = manifest.outputs.map((o) => o.name);
  const feeds = feedsOf(manifest, columns, from, to);
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    results = await run(feeds, names);
  } catch (err) {
    if (to - from === 1) {
      segments.push({ from, to, error: err instanceof Error ? err : new Error(String(err)) });
      return;
    }
    const mid = from + Math.ceil((to - from) / 2);
    await runRows(manifest, run, columns, from, mid, segments);
    await runRows(manifest, run, columns, mid, to, segments);
    return;
  }
  const outputs = names.map((name) => {
    const t = results[name] as ort.Tensor;
    const datatype = outputDatatype(name, t.type);
    return { name, datatype, data: denseOutputData(datatype, t.data), rowShape: t.dims.slice(1) };
  });
  segments.push({ from, to, outputs });
}

function feedsOf(
  manifest: ModelManifest,
  columns: Readonly<Record<string, DenseArray>>,
  from: number,
  to: number,
): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of manifest.inputs) {
    const rowShape = spec.shape.slice(1);
    const rowSize = elementCount(rowShape);
    const column = columns[spec.name];
    if (!column) throw new Error(`a dense run of ${manifest.name} needs input ${spec.name}`);
    feeds[spec.name] = denseTensor(spec.datatype as NumericDatatype, column.subarray(from * rowSize, to * rowSize), [
      to - from,
      ...rowShape,
    ]);
  }
  return feeds;
}
