import type { ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import { LoadedModel, type ItemOutcome, type SessionSettings } from "./loaded-model.ts";

/** Runs batches of items on loaded models: in this thread, or spread over a pool of threads. */
export interface ModelRunner {
  /** Batches that may run at once. */
  readonly parallelism: number;
  load(models: ResolvedModel[]): Promise<void>;
  run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]>;
  close(): Promise<void>;
}

export const modelKey = (name: string, version: string): string => `${name}@${version}`;

/**
 * Runs sessions on the calling thread. onnxruntime-node blocks the event loop for the whole run,
 * so this suits tiny models; larger ones belong in a ThreadPoolRunner.
 */
export class InProcessRunner implements ModelRunner {
  readonly parallelism = 1;
  private readonly models = new Map<string, LoadedModel>();

  constructor(private readonly settings: SessionSettings = {}) {}

  async load(models: ResolvedModel[]): Promise<void> {
    for (const m of models) {
      const loaded = await LoadedModel.load(m, this.settings);
      this.models.set(loaded.key, loaded);
    }
  }

  async run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]> {
    const model = this.models.get(key);
    if (!model) throw new Error(`model ${key} is not loaded`);
    return model.run(items);
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.values()].map((m) => m.release()));
    this.models.clear();
  }
}
