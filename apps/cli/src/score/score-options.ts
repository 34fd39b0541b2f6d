import path from "node:path";
import { UsageError, type InputFormat, type OutputFormat } from "./types.ts";

/** What `inferline score` was asked to do (commands/score.ts builds it from flags and environment). */
export interface ScoreOptions {
  /** A file path, or "-" for standard input. */
  input: string;
  model: string;
  version?: string;
  modelsDir: string;
  /** Output file; standard output when absent. */
  out?: string;
  format: OutputFormat;
  /** Input format; from the file extension (or the first byte) when absent. */
  inputFormat?: InputFormat;
  resume: boolean;
  force: boolean;
  /** Local mode: inference threads, each parsing, scoring and formatting whole chunks. */
  threads: number;
  chunkSize: number;
  checkpointIntervalMs: number;
  progress: "auto" | "bar" | "lines" | "off";
  /** Local mode: adapter modules the threads import before the model loads (INFERENCE_ADAPTER_MODULES). */
  adapterModules?: string[];
  /** Local mode: longest run of one chunk, in ms, over the manifest's timeoutMs (INFERENCE_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** Refuses options that cannot make a run (after the input file was found: a missing file is said first). */
export function checkOptions(options: ScoreOptions, inputPath: string | null): void {
  if (options.out && inputPath && path.resolve(options.out) === inputPath)
    throw new UsageError("--out must not be the input file");
  if (!Number.isInteger(options.threads) || options.threads < 1)
    throw new UsageError("--threads must be a whole number of at least 1");
  if (!Number.isInteger(options.chunkSize) || options.chunkSize < 1)
    throw new UsageError("--chunk-size must be a whole number of bytes, at least 1");
}
