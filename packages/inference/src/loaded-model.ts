import fs from "node:fs";
import * as ort from "onnxruntime-node";
import { InferlineError, type FlatTensor, type InferenceResult } from "@inferline/contracts";
import { modelFilePath, type ResolvedModel } from "@inferline/runtime";
import type { InferenceItem, ModelAdapter, PreparedItem } from "./adapter.ts";
import { adapterFor } from "./adapters.ts";
import { runDense, type DenseSegment } from "./dense-run.ts";
import type { DenseArray } from "./tensors.ts";

/**
 * One item's outcome. A failure is final for the item (bad input, a model error) unless
 * `retriable`: the run timed out or its thread died (`inference_timeout`, `inference_crashed`),
 * which another attempt may not repeat.
 */
export type ItemOutcome =
  { ok: true; result: InferenceResult } | { ok: false; code: string; message: string; retriable?: boolean };

export interface SessionSettings {
  /** Threads one session.run may use. Default 1: parallelism comes from more sessions/threads. */
  intraOpThreads?: number;
}

/** One model version with its session and adapter, ready to run batches. */
export class LoadedModel {
  private constructor(
    readonly model: ResolvedModel,
    private readonly session: ort.InferenceSession,
    private readonly adapter: ModelAdapter,
  ) {}

  static async load(model: ResolvedModel, settings: SessionSettings = {}): Promise<LoadedModel> {
    const file = modelFilePath(model);
    if (!fs.existsSync(file))
      throw new InferlineError(
        "model_file_missing",
        `model ${model.manifest.name}@${model.version}: ${file} does not exist`,
      );
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: settings.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      // Run-time errors reach the job's error field; onnxruntime's own stderr copy is noise.
      logSeverityLevel: 4,
    });
    const loaded = new LoadedModel(model, session, await adapterFor(model.manifest, model.dir));
    const [warm] = await loaded.run([loaded.adapter.warmupItem()]);
    if (!warm?.ok)
      throw new InferlineError(
        "warmup_failed",
        `model ${model.manifest.name}@${model.version} failed its warm-up run: ${warm?.message}`,
      );
    return loaded;
  }

  get key(): string {
    return `${this.model.manifest.name}@${this.model.version}`;
  }

  /**
   * Runs items as one batch. A batch that fails is retried item by item, so one input the model
   * rejects fails only its own job.
   */
  async run(items: InferenceItem[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(items.length);
    const prepared: Array<{ index: number; item: PreparedItem }> = [];
    await Promise.all(
      items.map(async (item, index) => {
        try {
          prepared.push({ index, item: await this.adapter.prepare(item) });
        } catch (err) {
          outcomes[index] = failure(err, "invalid_input");
        }
      }),
    );
    prepared.sort((a, b) => a.index - b.index);
    if (prepared.length > 0) await this.runPrepared(items, prepared, outcomes);
    return outcomes;
  }

  /**
   * Runs `rows` rows given as typed arrays (one per input, by name) straight on the session, past
   * the adapter: for models without pre/post-processing, scored many rows at a time (a chunk of a
   * file). A run the session refuses is split down to the rows at fault (see dense-run.ts).
   */
  runDense(columns: Readonly<Record<string, DenseArray>>, rows: number): Promise<DenseSegment[]> {
    return runDense(this.model.manifest, (feeds, outputs) => this.session.run(feeds, outputs), columns, rows);
  }

  private async runPrepared(
    items: InferenceItem[],
    prepared: Array<{ index: number; item: PreparedItem }>,
    outcomes: ItemOutcome[],
  ): Promise<void> {
    let outputs: ort.InferenceSession.OnnxValueMapType;
    try {
      outputs = await this.session.run(this.adapter.collate(prepared.map((p) => p.item)));
    } catch (err) {
      if (prepared.length === 1) {
        outcomes[prepared[0]!.index] = failure(err, "inference_error");
        return;
      }
      for (const one of prepared) await this.runPrepared(items, [one], outcomes);
      return;
    }
    const split = this.adapter.split(
      outputs,
      prepared.map((p) => p.item),
    );
    prepared.forEach((p, i) => {
      const part = split[i]!;
      outcomes[p.index] = { ok: true, result: this.toResult(part.outputs, items[p.index]!.outputs, part.decoded) };
    });
  }

  private toResult(outputs: FlatTensor[], wanted: string[] | undefined, decoded: unknown): InferenceResult {
    const chosen = wanted && wanted.length > 0 ? outputs.filter((o) => wanted.includes(o.name)) : outputs;
    const result: InferenceResult = {
      model_name: this.model.manifest.name,
      model_version: this.model.version,
      outputs: chosen,
    };
    const classifications = classify(this.model, chosen);
    if (classifications.length > 0) result.classifications = classifications;
    if (decoded !== undefined) result.decoded = decoded;
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Decodes each row of every labelled output into its top label and per-class probabilities. */
function classify(model: ResolvedModel, outputs: FlatTensor[]): NonNullable<InferenceResult["classifications"]> {
  const out: NonNullable<InferenceResult["classifications"]> = [];
  for (const tensor of outputs) {
    const labels = model.manifest.outputs.find((o) => o.name === tensor.name)?.labels;
    if (!labels || tensor.shape[tensor.shape.length - 1] !== labels.length) continue;
    const data = tensor.data as number[];
    for (let row = 0; row * labels.length < data.length; row++) {
      const probabilities: Record<string, number> = {};
      let best = 0;
      labels.forEach((label, k) => {
        const p = data[row * labels.length + k]!;
        probabilities[label] = p;
        if (p > data[row * labels.length + best]!) best = k;
      });
      out.push({ output: tensor.name, label: labels[best]!, score: data[row * labels.length + best]!, probabilities });
    }
  }
  return out;
}

function failure(err: unknown, fallback: string): ItemOutcome {
  const code = err instanceof InferlineError ? err.code : fallback;
  const message = err instanceof Error ? err.message : String(err);
  return { ok: false, code, message: message.slice(0, 2000) };
}
