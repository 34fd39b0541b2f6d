/**
 * Shared types of the `inferline score` pipeline:
 *
 *   input reader ──RawChunk──▶ Scorer (local threads | remote cluster) ──ScoredChunk──▶ ordered writer ──▶ checkpoint
 *
 * A chunk is a run of whole input records cut at a record boundary; its cut points depend only
 * on the input bytes and the chunk size, so a resumed run cuts (and scores) exactly the same chunks
 * as an uninterrupted one.
 */
import { InferlineError } from "@inferline/contracts";

/** A usage or input error: one clear message, exit code 1, no stack trace. */
export class UsageError extends InferlineError {
  constructor(message: string, cause?: unknown) {
    super("usage_error", message, { status: 400, cause });
  }
}

export type InputFormat = "csv" | "jsonl";
export type OutputFormat = "jsonl" | "csv";

/** Where each named input column / feature goes, decided once from the model and the CSV header. */
export interface ParseSettings {
  inputFormat: InputFormat;
  /** CSV only: 0-based column index of each feature, per dense input in manifest order. */
  csvColumns?: number[][];
  /** CSV only: 0-based column of the id (`id` or `customId`), when the header has one. */
  csvIdColumn?: number;
  /** CSV only: names of the header columns (for messages). */
  csvHeader?: string[];
  /** CSV only: the record separator, from the header line ("\r\n" or "\n"). */
  csvNewline?: "\n" | "\r\n";
}

/** What a scorer needs to know to score and format rows; plain data, so it crosses to threads. */
export interface ScoreSettings extends ParseSettings {
  outputFormat: OutputFormat;
  /** Stable across --resume of one run (see Checkpoint.runId). */
  runId?: string;
}

/** Whole input records, in input order. */
export interface RawChunk {
  /** 0, 1, 2… in input order. */
  seq: number;
  bytes: Uint8Array;
  /** 1-based input line of the chunk's first byte. */
  startLine: number;
  /** Input byte offset just past the chunk (what a checkpoint records as consumed). */
  endOffset: number;
  /** Number of line breaks inside the chunk. */
  lineBreaks: number;
}

/** A chunk's formatted results: output lines of the rows that scored, error lines of those that did not. */
export interface ScoredChunk {
  seq: number;
  out: Uint8Array;
  errors: Uint8Array;
  rows: number;
  failures: number;
}

/**
 * Scores chunks. The local scorer runs them on the inference package's thread pool (parse, dense
 * run, format in each thread); the remote scorer parses the same chunks, submits them to a
 * cluster's batches API and formats what comes back.
 * `score` may be called up to `parallelism` times before earlier calls settle; results may
 * settle out of order (the writer puts them back in order).
 */
export interface Scorer {
  readonly parallelism: number;
  /** Loads models / checks the connection. Errors here are usage errors (exit 1). */
  start(): Promise<void>;
  score(chunk: RawChunk): Promise<ScoredChunk>;
  close(): Promise<void>;
}
