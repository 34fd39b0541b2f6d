import type { Datatype, ModelManifest } from "@inferline/contracts";
import { denseReason } from "@inferline/inference";
import { UsageError } from "./types.ts";

/** One model input as rows: `rowSize` elements per row after the batch dimension. */
export interface RowInput {
  name: string;
  datatype: Datatype;
  /** Dimensions after the batch dimension. */
  rowShape: number[];
  rowSize: number;
  /** Named features (tabular inputs), one per element of a row. */
  features?: string[];
}

export interface OutputSpec {
  name: string;
  labels?: string[];
}

/**
 * How the CLI sees a model. `dense` models (batch dimension first, fixed row shape, numeric
 * datatypes, no pre/post-processing) are scored as one stacked tensor per chunk; `tabular` ones
 * (dense, every input with named features) also take CSV and named-feature JSONL. Other models
 * take JSONL lines of v2 tensors, run through the inference package's generic adapter path.
 */
export interface ModelLayout {
  name: string;
  version: string;
  inputs: RowInput[];
  outputs: OutputSpec[];
  dense: boolean;
  tabular: boolean;
  /** Why the model is not tabular (for usage errors). */
  notTabularReason?: string;
}

export function modelLayout(manifest: ModelManifest, version: string): ModelLayout {
  const notDense = denseReason(manifest);
  const inputs: RowInput[] = manifest.inputs.map((spec) => {
    const rowShape = spec.shape.slice(1);
    const rowSize = rowShape.reduce((a, b) => a * b, 1);
    return {
      name: spec.name,
      datatype: spec.datatype,
      rowShape,
      rowSize,
      ...(spec.features ? { features: spec.features } : {}),
    };
  });
  const dense = notDense === undefined;
  let notTabularReason = notDense;
  if (dense) {
    const bad = inputs.find((i) => !i.features || i.features.length !== i.rowSize);
    if (bad) notTabularReason = `input ${bad.name} has no named features in the manifest`;
  }
  return {
    name: manifest.name,
    version,
    inputs,
    outputs: manifest.outputs.map((o) => ({ name: o.name, ...(o.labels ? { labels: o.labels } : {}) })),
    dense,
    tabular: notTabularReason === undefined,
    ...(notTabularReason ? { notTabularReason } : {}),
  };
}

export const ID_FIELDS = ["id", "customId"] as const;

/**
 * Maps a CSV header to the model's features: names match case-insensitively (after trimming
 * spaces), extra columns are ignored, a missing feature column is a usage error. A column named
 * `id` or `customId` is echoed in the output.
 */
export function mapCsvHeader(layout: ModelLayout, header: string[]): { csvColumns: number[][]; csvIdColumn?: number } {
  if (!layout.tabular)
    throw new UsageError(
      `model ${layout.name} cannot score CSV: ${layout.notTabularReason}; give it JSONL lines of v2 tensors ({"inputs": [...]})`,
    );
  const index = new Map<string, number>();
  header.forEach((name, i) => {
    const key = name.trim().toLowerCase();
    if (!index.has(key)) index.set(key, i);
  });
  const missing: string[] = [];
  const csvColumns = layout.inputs.map((input) =>
    input.features!.map((feature) => {
      const col = index.get(feature.toLowerCase());
      if (col === undefined) missing.push(feature);
      return col ?? -1;
    }),
  );
  if (missing.length > 0) {
    throw new UsageError(
      `the CSV header lacks column${missing.length > 1 ? "s" : ""} ${missing.map((m) => JSON.stringify(m)).join(", ")} needed by model ${layout.name} ` +
        `(it needs ${layout.inputs.flatMap((i) => i.features!).join(", ")}; the header has ${header.join(", ")})`,
    );
  }
  const idColumn = ID_FIELDS.map((f) => index.get(f.toLowerCase())).find((c) => c !== undefined);
  return { csvColumns, ...(idColumn !== undefined ? { csvIdColumn: idColumn } : {}) };
}
