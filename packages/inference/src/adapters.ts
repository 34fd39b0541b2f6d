import { pathToFileURL } from "node:url";
import { InferlineError, type ModelManifest } from "@inferline/contracts";
import { defaultAdapter, type ModelAdapter } from "./adapter.ts";

export type AdapterFactory = (manifest: ModelManifest, modelDir: string) => Promise<ModelAdapter> | ModelAdapter;

/**
 * Pre/post-processing steps that a manifest may name in `preprocess`. Kept on globalThis so that
 * an adapter module (INFERENCE_ADAPTER_MODULES) that resolves its own copy of this package still
 * registers where the runners look.
 */
const REGISTRY = Symbol.for("inferline.adapters");
const registry: Map<string, AdapterFactory> =
  ((globalThis as Record<symbol, unknown>)[REGISTRY] as Map<string, AdapterFactory> | undefined) ??
  new Map<string, AdapterFactory>();
(globalThis as Record<symbol, unknown>)[REGISTRY] = registry;

export function registerAdapter(name: string, factory: AdapterFactory): void {
  registry.set(name, factory);
}

export async function adapterFor(manifest: ModelManifest, modelDir: string): Promise<ModelAdapter> {
  if (!manifest.preprocess) return defaultAdapter(manifest);
  const factory = registry.get(manifest.preprocess);
  if (!factory)
    throw new InferlineError(
      "unknown_preprocess",
      `model ${manifest.name}: unknown preprocess ${JSON.stringify(manifest.preprocess)} (known: ${[...registry.keys()].join(", ") || "none"})`,
    );
  return factory(manifest, modelDir);
}

/**
 * Imports modules (absolute paths or file: URLs; .ts works wherever tsx is loaded) that call
 * registerAdapter as they load. A module that fails is a configuration error, fatal to the runner.
 */
export async function importAdapterModules(modules: readonly string[]): Promise<void> {
  for (const spec of modules) {
    const url = spec.startsWith("file:") ? spec : pathToFileURL(spec).href;
    try {
      await import(url);
    } catch (err) {
      throw new InferlineError(
        "adapter_module_failed",
        `adapter module ${spec} failed to load: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
