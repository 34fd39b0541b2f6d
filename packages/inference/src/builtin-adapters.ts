// Registers the pre/post-processing adapters that ship with Inferline. Imported for its effect by
// every entry point that loads models (the engine and pool threads).
import { registerAdapter } from "./adapters.ts";
import { ocrTextLineAdapter } from "./adapters/ocr-text-line.ts";

registerAdapter("ocr-text-line", (manifest, modelDir) => ocrTextLineAdapter(manifest, modelDir));
