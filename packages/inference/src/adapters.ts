import type { ModelManifest } from "@inferline/contracts";
import { defaultAdapter, type ModelAdapter } from "./adapter.ts";

export type AdapterFactory = (manifest: ModelManifest, modelDir: string) => Promise<ModelAdapter> | ModelAdapter;

/** Pre/post-processing steps that a manifest may name in `preprocess`. */
const registry = new Map<string, AdapterFactory>();

export function registerAdapter(name: string, factory: AdapterFactory): void {
  registry.set(name, factory);
}

export async function adapterFor(manifest: ModelManifest, modelDir: string): Promise<ModelAdapter> {
  if (!manifest.preprocess) return defaultAdapter(manifest);
  const factory = registry.get(manifest.preprocess);
  if (!factory) throw new Error(`model ${manifest.name}: unknown preprocess ${JSON.stringify(manifest.preprocess)} (known: ${[...registry.keys()].join(", ") || "none"})`);
  return factory(manifest, modelDir);
}
