import type { ModelRepository, ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import { DynamicBatcher } from "./batcher.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { modelKey, type ModelRunner } from "./runner.ts";
import "./builtin-adapters.ts";

export interface BatchObserver {
  /** Called after every session run with its size in items and rows, and its duration. */
  onBatch?(model: string, version: string, items: number, rows: number, seconds: number): void;
}

/**
 * Serves loaded models through a dynamic batcher each: callers submit single items and get their
 * own outcome back, while the runner sees batches bounded by the manifest's batching settings.
 */
export class InferenceEngine {
  private readonly batchers = new Map<string, DynamicBatcher<InferenceItem, ItemOutcome>>();
  private readonly runnerOf: (model: ResolvedModel) => ModelRunner;
  private readonly runners = new Set<ModelRunner>();

  /** `runner`: one runner for every model, or a choice per model (e.g. a thread pool for heavy ones). */
  constructor(runner: ModelRunner | ((model: ResolvedModel) => ModelRunner), private readonly observer: BatchObserver = {}) {
    this.runnerOf = typeof runner === "function" ? runner : () => runner;
  }

  async load(models: ResolvedModel[]): Promise<void> {
    const byRunner = new Map<ModelRunner, ResolvedModel[]>();
    for (const m of models) {
      const runner = this.runnerOf(m);
      byRunner.set(runner, [...(byRunner.get(runner) ?? []), m]);
      this.runners.add(runner);
    }
    await Promise.all([...byRunner].map(([runner, list]) => runner.load(list)));
    for (const [runner, list] of byRunner) for (const m of list) this.addBatcher(runner, m);
  }

  private addBatcher(runner: ModelRunner, m: ResolvedModel): void {
    const key = modelKey(m.manifest.name, m.version);
    const rowsOf = (item: InferenceItem) => item.inputs[0]?.shape[0] ?? 1;
    const batcher = new DynamicBatcher<InferenceItem, ItemOutcome>({
      maxBatchSize: m.manifest.batching.maxBatchSize,
      maxQueueDelayMs: m.manifest.batching.maxQueueDelayMs,
      maxInFlight: runner.parallelism,
      rowsOf,
      run: async (items) => {
        const started = performance.now();
        const outcomes = await runner.run(key, items);
        const rows = items.reduce((n, i) => n + rowsOf(i), 0);
        this.observer.onBatch?.(m.manifest.name, m.version, items.length, rows, (performance.now() - started) / 1000);
        return outcomes;
      },
    });
    this.batchers.set(key, batcher);
  }

  /** Every version of the models named in `names` (all in the repository for "*"). */
  static resolveAll(repo: ModelRepository, names: string[]): ResolvedModel[] {
    const wanted = names.includes("*") ? repo.names() : names;
    return wanted.flatMap((name) => repo.manifest(name).versions.map((v) => repo.resolve(name, v.version)));
  }

  infer(model: string, version: string, item: InferenceItem): Promise<ItemOutcome> {
    const batcher = this.batchers.get(modelKey(model, version));
    if (!batcher) return Promise.resolve({ ok: false, code: "model_not_served", message: `this worker does not serve ${model}@${version}` });
    return batcher.submit(item);
  }

  async close(): Promise<void> {
    await Promise.all([...this.runners].map((r) => r.close()));
  }
}
