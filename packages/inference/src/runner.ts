import type { ResolvedModel } from "@inferline/runtime";
import type { InferenceItem } from "./adapter.ts";
import { importAdapterModules } from "./adapters.ts";
import { LoadedModel, type ItemOutcome, type SessionSettings } from "./loaded-model.ts";

/** A model version that did not load (missing file, unknown adapter, failed warm-up). */
export interface ModelLoadFailure {
  model: ResolvedModel;
  error: Error;
}

/** Where a runner reports what happens to it; pino's Logger fits. */
export interface RunnerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RunnerSettings extends SessionSettings {
  /**
   * ES modules (absolute paths or file: URLs) imported before any model loads, on the main thread
   * and in every pool thread, so that they can call registerAdapter.
   */
  adapterModules?: readonly string[];
  /** Run timeout of a model whose manifest sets no `timeoutMs`, in ms (thread pools only). Default 60000. */
  defaultTimeoutMs?: number;
  /** Run timeout of every model, winning over manifests when set (INFERENCE_TIMEOUT_MS). */
  timeoutOverrideMs?: number;
  /** First delay before retrying a replacement thread that failed to load, doubling up to 30 s. Default 1000. */
  replaceBackoffMs?: number;
  logger?: RunnerLogger;
}

/** Runs batches of items on loaded models: in this thread, or spread over a pool of threads. */
export interface ModelRunner {
  /** Batches that may run at once. */
  readonly parallelism: number;
  /**
   * Loads what it can and answers the models that failed. Throws only for what stops the whole
   * runner (an adapter module that does not import, threads that cannot start).
   */
  load(models: ResolvedModel[]): Promise<ModelLoadFailure[]>;
  run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]>;
  close(): Promise<void>;
}

export const modelKey = (name: string, version: string): string => `${name}@${version}`;

/**
 * Runs sessions on the calling thread. onnxruntime-node blocks the event loop for the whole run,
 * so this suits tiny models; larger ones belong in a ThreadPoolRunner. A run here cannot be
 * interrupted, so no timeout applies.
 */
export class InProcessRunner implements ModelRunner {
  readonly parallelism = 1;
  private readonly models = new Map<string, LoadedModel>();

  constructor(private readonly settings: RunnerSettings = {}) {}

  async load(models: ResolvedModel[]): Promise<ModelLoadFailure[]> {
    await importAdapterModules(this.settings.adapterModules ?? []);
    const failures: ModelLoadFailure[] = [];
    for (const m of models) {
      try {
        const loaded = await LoadedModel.load(m, { intraOpThreads: this.settings.intraOpThreads });
        this.models.set(loaded.key, loaded);
      } catch (err) {
        failures.push({ model: m, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    return failures;
  }

  /** A model version this runner loaded (what a pool thread hands its thread task). */
  loaded(key: string): LoadedModel | undefined {
    return this.models.get(key);
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
