import { InferlineError, Tensor, validateInputs } from "@inferline/contracts";
import { type ResolvedModel } from "@inferline/runtime";
import { modelKey, ThreadPoolRunner } from "@inferline/inference";
import { ChunkParser, type RowError } from "./chunk-parser.ts";
import type { ChunkResult } from "./chunk-scorer.ts";
import type { ChunkRequest } from "./chunk-task.ts";
import { ResultFormatter } from "./formatter.ts";
import { cliModuleUrl } from "../shipped-files.ts";
import { modelLayout } from "./model-layout.ts";
import { UsageError, type RawChunk, type ScoredChunk, type ScoreSettings, type Scorer } from "./types.ts";

const CHUNK_TASK = cliModuleUrl("./chunk-task", import.meta.url);
/** Young generation of a thread's heap: V8's default (48 MB) buys little speed here and costs RSS. */
const THREAD_YOUNG_GENERATION_MB = 24;
/**
 * Runs of one chunk before its rows fail: a run that timed out or killed its thread is tried once
 * more on a fresh thread (a passing fault, such as a stall of the machine, should not cost rows);
 * the same fault twice is the chunk's own, and waiting a third time would only slow the file down.
 */
const CHUNK_ATTEMPTS = 2;
/** Thread faults worth another run; the pool replaced the thread before rejecting. */
const THREAD_FAULTS: ReadonlySet<string> = new Set(["inference_timeout", "inference_crashed"]);

export interface LocalScorerOptions {
  /** Pool threads; each parses, scores and formats whole chunks. */
  threads: number;
  /** Adapter modules every thread imports before the model loads (INFERENCE_ADAPTER_MODULES). */
  adapterModules?: readonly string[];
  /** Longest run of one chunk, in ms, winning over the manifest's timeoutMs (INFERENCE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Told when a chunk's run failed and what becomes of it. */
  warn?: (message: string) => void;
}

/**
 * Scores chunks in-process on the inference package's thread pool: each thread holds the model's
 * session and runs the CLI's chunk task (chunk-task.ts) on whole chunks, so the main thread only
 * reads, orders and writes. The pool's run timeout (the manifest's `timeoutMs`, default 60 s)
 * bounds one chunk; a chunk whose run times out or kills its thread runs once more on a
 * replacement thread, then its rows go to the errors file while the rest of the file scores.
 */
export class LocalScorer implements Scorer {
  /** Two chunks per thread in flight: one running, one waiting on the thread behind it. */
  readonly parallelism: number;
  private readonly key: string;
  private pool: ThreadPoolRunner | undefined;
  private failures: { parser: ChunkParser; formatter: ResultFormatter } | undefined;

  constructor(
    private readonly model: ResolvedModel,
    private readonly settings: ScoreSettings,
    private readonly options: LocalScorerOptions,
  ) {
    this.parallelism = options.threads * 2;
    this.key = modelKey(model.manifest.name, model.version);
  }

  async start(): Promise<void> {
    const pool = new ThreadPoolRunner(this.options.threads, {
      task: { module: CHUNK_TASK, data: this.settings },
      // A chunk waits on each thread behind the one it scores: threads never wait for this one.
      prefetch: 1,
      ...(this.options.adapterModules ? { adapterModules: this.options.adapterModules } : {}),
      ...(this.options.timeoutMs !== undefined ? { timeoutOverrideMs: this.options.timeoutMs } : {}),
      resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
      // No inherited flags: V8 flags are refused in threads, profilers stay on the main thread, and
      // the thread's bootstrap registers the TypeScript loader itself (`--import tsx` would load it twice).
      execArgv: [],
    });
    this.pool = pool;
    const failed = await pool.load([this.model]).catch((err: unknown) => [{ error: err as Error }]);
    if (failed.length > 0) throw new UsageError(`cannot load model ${this.key}: ${failed[0]!.error.message}`);
  }

  async score(chunk: RawChunk): Promise<ScoredChunk> {
    const request: ChunkRequest = { bytes: chunk.bytes, startLine: chunk.startLine };
    for (let attempt = 1; ; attempt++) {
      try {
        return { seq: chunk.seq, ...(await this.pool!.runTask<ChunkResult>(this.key, request)) };
      } catch (err) {
        const fault = threadFault(err);
        const what = `${lineRange(chunk)}: ${fault.message} (run ${attempt} of ${CHUNK_ATTEMPTS})`;
        if (attempt < CHUNK_ATTEMPTS) {
          this.options.warn?.(`${what}; scoring them again`);
          continue;
        }
        this.options.warn?.(`${what}; their rows go to the errors file`);
        return this.failRows(chunk, fault);
      }
    }
  }

  /**
   * The chunk's rows, failed: parsed here as the thread would have parsed them, so that each row
   * keeps its line (and id) and a row that does not parse keeps its own error.
   */
  private failRows(chunk: RawChunk, err: InferlineError): ScoredChunk {
    if (!this.failures) {
      const { manifest, version } = this.model;
      const layout = modelLayout(manifest, version);
      this.failures = {
        parser: new ChunkParser(layout, manifest, this.settings, { Tensor, validateInputs }),
        formatter: new ResultFormatter(layout, manifest, this.settings.outputFormat),
      };
    }
    const parsed = this.failures.parser.parse(new TextDecoder().decode(chunk.bytes), chunk.startLine);
    const error = `${err.code}: ${err.message} (the chunk of ${lineRange(chunk)} failed ${CHUNK_ATTEMPTS} runs)`;
    const errors: RowError[] = [...parsed.errors];
    for (let i = 0; i < parsed.count; i++) {
      const id = parsed.ids?.[i];
      errors.push({ line: parsed.lines[i]!, ...(id !== undefined ? { id } : {}), error });
    }
    errors.sort((a, b) => a.line - b.line);
    return {
      seq: chunk.seq,
      out: new Uint8Array(0),
      errors: new TextEncoder().encode(this.failures.formatter.errors(errors)),
      rows: 0,
      failures: errors.length,
    };
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}

/** The pool's rejection as a thread fault worth another run; anything else is thrown on, and stops the run (exit 1). */
function threadFault(err: unknown): InferlineError {
  if (err instanceof InferlineError && THREAD_FAULTS.has(err.code)) return err;
  throw err instanceof InferlineError ? err : new Error(`scoring failed: ${(err as Error).message}`);
}

/** "lines 2-5": the input lines a chunk spans (it ends with a line break, but for a file's last line). */
function lineRange(chunk: RawChunk): string {
  const last = chunk.startLine + chunk.lineBreaks - (chunk.bytes[chunk.bytes.length - 1] === 10 ? 1 : 0);
  return `lines ${chunk.startLine}-${Math.max(last, chunk.startLine)}`;
}
