// Registers the pre/post-processing adapters that ship with Inferline. Imported for its effect by
// every entry point that loads models (the engine and pool threads). Each adapter's module (and
// what it needs: sharp, for images) loads when a model that names it loads, not before: the CLI
// and workers that serve only tabular models never pay for it.
import { registerAdapter } from "./adapters.ts";

registerAdapter("ocr-text-line", async (manifest, modelDir) =>
  (await import("./adapters/ocr-text-line.ts")).ocrTextLineAdapter(manifest, modelDir),
);
