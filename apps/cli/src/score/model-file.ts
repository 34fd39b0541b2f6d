import path from "node:path";
import { createRequire } from "node:module";
import type { ResolvedModel } from "@inferline/contracts";
import { UsageError } from "./types.ts";

/**
 * The ONNX file of a model version: in the model's folder, or inside an installed npm package.
 * Same rule as the inference package's modelFilePath, kept here so that the CLI's main thread
 * resolves it without loading onnxruntime (the threads load it).
 */
export function onnxFileOf(model: ResolvedModel): string {
  if (model.spec.file) return path.resolve(model.dir, model.spec.file);
  const pkg = model.spec.package!;
  try {
    const require = createRequire(path.join(model.dir, "model.json"));
    return path.join(path.dirname(require.resolve(`${pkg.name}/package.json`)), pkg.path);
  } catch {
    throw new UsageError(`model ${model.manifest.name}: npm package ${pkg.name} is not installed (run the install command)`);
  }
}
