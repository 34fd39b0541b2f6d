import type * as ort from "onnxruntime-node";
import { zeroElement, type FlatTensor, type ModelManifest, type TensorElement } from "@inferline/contracts";
import { sliceRows, stackRows } from "./tensors.ts";

/** One job's request as the inference layer sees it. */
export interface InferenceItem {
  inputs: FlatTensor[];
  /** Output names to return; all when empty or absent. */
  outputs?: string[];
}

/** An item after pre-processing: how many rows it adds to the batch, and adapter-specific data. */
export interface PreparedItem {
  rows: number;
  data: unknown;
}

export interface SplitItem {
  outputs: FlatTensor[];
  /** Decoded form of the outputs (text, boxes…), when the adapter has one. */
  decoded?: unknown;
}

/**
 * How a model's API tensors become session feeds and back. The default stacks rows of same-named
 * inputs; models with pre/post-processing (images, text) register their own by name.
 */
export interface ModelAdapter {
  /** Per item, so that one bad item (an undecodable image) fails alone. Throw NonRetriableError for bad input. */
  prepare(item: InferenceItem): Promise<PreparedItem> | PreparedItem;
  /** Builds the session feeds for a batch of prepared items. */
  collate(items: PreparedItem[]): Record<string, ort.Tensor>;
  /** Cuts the batch outputs back per item, in order. */
  split(outputs: Record<string, ort.Tensor>, items: PreparedItem[]): SplitItem[];
  /** An item that exercises the session at load time. */
  warmupItem(): InferenceItem;
}

export function defaultAdapter(manifest: ModelManifest): ModelAdapter {
  return {
    prepare: (item) => ({ rows: item.inputs[0]?.shape[0] ?? 1, data: item.inputs }),
    collate(items) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const spec of manifest.inputs) {
        feeds[spec.name] = stackRows(items.map((p) => (p.data as FlatTensor[]).find((t) => t.name === spec.name)!));
      }
      return feeds;
    },
    split(outputs, items) {
      let offset = 0;
      return items.map((p) => {
        const out = Object.entries(outputs).map(([name, tensor]) => sliceRows(name, tensor, offset, p.rows));
        offset += p.rows;
        return { outputs: out };
      });
    },
    warmupItem: () => ({
      inputs: manifest.inputs.map((spec) => {
        const shape = spec.shape.map((d) => (d === -1 ? 1 : d));
        const n = shape.reduce((a, b) => a * b, 1);
        return {
          name: spec.name,
          datatype: spec.datatype,
          shape,
          data: new Array<TensorElement>(n).fill(zeroElement(spec.datatype)),
        };
      }),
    }),
  };
}
