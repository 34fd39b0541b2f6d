import type { ModelManifest, TensorSpec } from "@inferline/contracts";
import type { GraphSignature, GraphTensor } from "@inferline/inference";
import { describeTensor } from "./tensor-text.ts";

export interface CheckResult {
  /** Each fault, as one line that names both sides. */
  mismatches: string[];
  /** What was not compared, and why. */
  notes: string[];
}

/**
 * Compares a manifest with the graph of one of its versions: every input and output by name,
 * datatype, rank and fixed dimensions, and labels and features against the dimension they name.
 * A manifest dimension may be fixed where the graph's is dynamic (a tighter contract), never
 * dynamic (-1) or different where the graph's is fixed. A model with a pre- or post-processing
 * adapter has inputs (and outputs) of the adapter's, not the graph's: its inputs are not compared,
 * and only the outputs the graph has too.
 */
export function checkManifest(manifest: ModelManifest, graph: GraphSignature): CheckResult {
  const mismatches: string[] = [];
  const notes: string[] = [];
  const adapter = manifest.preprocess ?? manifest.postprocess;
  if (manifest.preprocess) {
    notes.push(
      `inputs go through the '${manifest.preprocess}' adapter: not compared with the graph's ${graph.inputs.map(describeTensor).join(", ")}`,
    );
  } else {
    compareSide("input", manifest.inputs, graph.inputs, mismatches, { extraIsFault: true, missingIsFault: true });
  }
  compareSide("output", manifest.outputs, graph.outputs, mismatches, {
    extraIsFault: !adapter,
    missingIsFault: !adapter,
  });
  if (adapter)
    notes.push(`outputs the graph lacks may come from the '${adapter}' adapter: only those the graph has are compared`);
  return { mismatches, notes };
}

function compareSide(
  kind: "input" | "output",
  specs: TensorSpec[],
  graph: GraphTensor[],
  out: string[],
  options: { extraIsFault: boolean; missingIsFault: boolean },
): void {
  const named = new Set(specs.map((s) => s.name));
  const unclaimed = graph.filter((g) => !named.has(g.name));
  for (const spec of specs) {
    const actual = graph.find((g) => g.name === spec.name);
    if (!actual) {
      if (options.missingIsFault)
        out.push(
          `manifest ${kind} '${spec.name}'; the model has ${(unclaimed.length > 0 ? unclaimed : graph).map(describeTensor).join(", ") || `no ${kind}s`}`,
        );
      continue;
    }
    out.push(...compareTensor(kind, spec, actual));
  }
  if (options.extraIsFault) {
    for (const g of unclaimed) out.push(`the model's ${kind} ${describeTensor(g)} is not in the manifest`);
  }
}

function compareTensor(kind: string, spec: TensorSpec, actual: GraphTensor): string[] {
  const faults: string[] = [];
  const where = `${kind} '${spec.name}'`;
  const manifestShape = `[${spec.shape.join(",")}]`;
  if (!actual.datatype)
    faults.push(`${where}: the model's is ${actual.onnxType}, which the API cannot carry (manifest ${spec.datatype})`);
  else if (actual.datatype !== spec.datatype)
    faults.push(`${where}: manifest ${spec.datatype}, the model ${actual.datatype} (${describeTensor(actual)})`);
  if (spec.shape.length !== actual.shape.length) {
    faults.push(
      `${where}: manifest shape ${manifestShape} has rank ${spec.shape.length}; the model's ${describeTensor(actual)} has rank ${actual.shape.length}`,
    );
  } else {
    spec.shape.forEach((d, i) => {
      const g = actual.shape[i]!;
      if (g === -1 || d === g) return;
      faults.push(
        `${where} dimension ${i}: manifest ${d === -1 ? "-1 (any size)" : d}, the model ${g} (manifest ${manifestShape}, model ${describeTensor(actual)})`,
      );
    });
  }
  // Labels and features count along the last dimension: the graph's when fixed, else the manifest's.
  const fixed = [actual.shape[actual.shape.length - 1], spec.shape[spec.shape.length - 1]].find(
    (d) => d !== undefined && d !== -1,
  );
  if (spec.labels && fixed !== undefined && spec.labels.length !== fixed)
    faults.push(`${where}: ${spec.labels.length} labels for a last dimension of ${fixed}`);
  if (spec.features && fixed !== undefined && spec.features.length !== fixed)
    faults.push(`${where}: ${spec.features.length} features for a last dimension of ${fixed}`);
  return faults;
}
