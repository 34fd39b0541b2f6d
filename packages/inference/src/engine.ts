import { InferlineError } from "@inferline/contracts";
import { type ModelRepository, type ResolvedModel } from "@inferline/runtime";
import type { InferenceItem } from "./adapter.ts";
import { DynamicBatcher, type SubmitOptions } from "./batcher.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { modelKey, type ModelLoadFailure, type ModelRunner } from "./runner.ts";
import "./builtin-adapters.ts";

export interface BatchObserver {
  /** Called after every session run with its size in items and rows, and its duration. */
  onBatch?(model: string, version: string, items: number, rows: number, seconds: number): void;
  /** Called for each model version left out by a partial load. */
  onLoadFailed?(model: string, version: string, error: Error): void;
}

export interface LoadReport {
  loaded: ResolvedModel[];
  failed: ModelLoadFailure[];
  /** Names of the models with at least one version loaded: the queues worth consuming. */
  served: string[];
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
  constructor(
    runner: ModelRunner | ((model: ResolvedModel) => ModelRunner),
    private readonly observer: BatchObserver = {},
  ) {
    this.runnerOf = typeof runner === "function" ? runner : () => runner;
  }

  /**
   * Loads every model on its runner and serves those that loaded. By default any failure fails
   * the whole load (and closes what did load); with `partial`, failed models are reported to
   * `observer.onLoadFailed` and left out, even when none loaded (a worker then stays up to report
   * them unready, rather than exiting and restarting into the same failure), and only a
   * runner-wide fault (an adapter module that does not import) throws.
   */
  async load(models: ResolvedModel[], options: { partial?: boolean } = {}): Promise<LoadReport> {
    const byRunner = new Map<ModelRunner, ResolvedModel[]>();
    for (const m of models) {
      const runner = this.runnerOf(m);
      byRunner.set(runner, [...(byRunner.get(runner) ?? []), m]);
      this.runners.add(runner);
    }
    const failed = await this.loadRunners(byRunner, options.partial ?? false);
    if (failed.length > 0 && !options.partial) {
      await this.close();
      throw failed[0]!.error;
    }
    const broken = new Set(failed.map((f) => f.model));
    for (const f of failed) this.observer.onLoadFailed?.(f.model.manifest.name, f.model.version, f.error);
    for (const [runner, list] of byRunner) for (const m of list) if (!broken.has(m)) this.addBatcher(runner, m);
    const loaded = models.filter((m) => !broken.has(m));
    return { loaded, failed, served: [...new Set(loaded.map((m) => m.manifest.name))] };
  }

  /** The models that failed on their runners; throws (after closing every runner) for a runner-wide fault, or any fault unless `partial`. */
  private async loadRunners(
    byRunner: Map<ModelRunner, ResolvedModel[]>,
    partial: boolean,
  ): Promise<ModelLoadFailure[]> {
    const lists = [...byRunner];
    const settled = await Promise.allSettled(lists.map(([runner, list]) => runner.load(list)));
    const failed: ModelLoadFailure[] = [];
    for (const [i, s] of settled.entries()) {
      if (s.status === "fulfilled") {
        failed.push(...s.value);
      } else if (partial && !isRunnerWide(s.reason)) {
        failed.push(...lists[i]![1].map((model) => ({ model, error: asError(s.reason) })));
      } else {
        await this.close();
        throw asError(s.reason);
      }
    }
    return failed;
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

  /**
   * `alone`: run the item in a session run of its own (a retry after its run timed out or crashed,
   * so it can take no other item down). `share`: whose work it is, for the turns the model's
   * batcher gives (see DynamicBatcher).
   */
  infer(model: string, version: string, item: InferenceItem, options: SubmitOptions = {}): Promise<ItemOutcome> {
    const batcher = this.batchers.get(modelKey(model, version));
    if (!batcher)
      return Promise.resolve({
        ok: false,
        code: "model_not_served",
        message: `this worker does not serve ${model}@${version}`,
      });
    return batcher.submit(item, options);
  }

  async close(): Promise<void> {
    await Promise.all([...this.runners].map((r) => r.close()));
  }
}

/** Faults that no other model of the runner would escape: configuration, not one model's. */
function isRunnerWide(err: unknown): boolean {
  return err instanceof InferlineError && err.code === "adapter_module_failed";
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
