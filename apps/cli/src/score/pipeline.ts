import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { InferlineError, ModelRepository, NotFoundError, type ResolvedModel } from "@inferline/contracts";
import { assertResumable, checkpointPath, readCheckpoint, removeCheckpoint, writeCheckpoint, type Checkpoint } from "./checkpoint.ts";
import { ResultFormatter } from "./formatter.ts";
import { InputReader } from "./input-reader.ts";
import { LocalScorer } from "./local-scorer.ts";
import { mapCsvHeader, modelLayout } from "./model-layout.ts";
import { FileSink, OrderedWriter, StreamSink, type Sink, type WrittenState } from "./ordered-writer.ts";
import { Progress } from "./progress.ts";
import { UsageError, type InputFormat, type OutputFormat, type RawChunk, type ScoreSettings, type Scorer } from "./types.ts";

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
  threads: number;
  chunkSize: number;
  checkpointIntervalMs: number;
  progress: "auto" | "bar" | "lines" | "off";
}

/** Exit codes: 0 every row scored, 2 some rows failed, 1 usage/IO error, 130/143 interrupted. */
export const EXIT = { ok: 0, usage: 1, rowsFailed: 2, sigint: 130, sigterm: 143 } as const;

function resolveModel(options: ScoreOptions): ResolvedModel {
  let repo: ModelRepository;
  try {
    repo = ModelRepository.load(options.modelsDir);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    return repo.resolve(options.model, options.version);
  } catch (err) {
    if (err instanceof NotFoundError) throw new UsageError(`${err.message}; the models are: ${repo.names().join(", ") || "(none)"} (in ${repo.root})`);
    throw err;
  }
}

function inputFormatOf(file: string): InputFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  return undefined;
}

function statInput(file: string): fs.Stats {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code === "ENOENT" ? `input file ${file} does not exist` : `cannot read input file ${file}: ${(err as Error).message}`);
  }
  if (stat.isDirectory()) throw new UsageError(`input ${file} is a folder, not a file`);
  return stat;
}

/**
 * `inferline score`: reader → scorer (chunks in parallel) → ordered writer → checkpoint. Returns
 * the exit code; throws UsageError for usage/IO problems.
 */
export async function runScore(options: ScoreOptions, makeScorer?: (model: ResolvedModel, settings: ScoreSettings) => Scorer): Promise<number> {
  const fromStdin = options.input === "-";
  const inputPath = fromStdin ? null : path.resolve(options.input);
  const stat = inputPath ? statInput(inputPath) : undefined;
  if (options.out && inputPath && path.resolve(options.out) === inputPath) throw new UsageError("--out must not be the input file");
  if (!Number.isInteger(options.threads) || options.threads < 1) throw new UsageError("--threads must be a whole number of at least 1");
  if (!Number.isInteger(options.chunkSize) || options.chunkSize < 1) throw new UsageError("--chunk-size must be a whole number of bytes, at least 1");

  const model = resolveModel(options);
  const layout = modelLayout(model.manifest, model.version);
  const outPath = options.out ? path.resolve(options.out) : undefined;
  const errorsPath = outPath ? `${outPath}.errors.jsonl` : path.resolve("score-errors.jsonl");
  const resumable = outPath !== undefined && inputPath !== null;
  const cpFile = outPath ? checkpointPath(outPath) : undefined;

  // Checkpoint rules: --resume continues an interrupted run; without it, a leftover checkpoint is an error.
  let checkpoint: Checkpoint | undefined;
  if (options.resume) {
    if (!resumable) throw new UsageError("--resume needs an input file (not standard input) and --out <file>");
    checkpoint = readCheckpoint(cpFile!);
    if (!checkpoint) process.stderr.write(`inferline score: no checkpoint ${cpFile}; starting from the beginning\n`);
  } else if (cpFile && fs.existsSync(cpFile)) {
    if (!options.force) {
      throw new UsageError(`${cpFile} exists: an earlier run into ${options.out} was interrupted; add --resume to continue it, or --force to start over`);
    }
    removeCheckpoint(cpFile);
  }

  // Input format and, for CSV, the header → feature columns.
  let reader = InputReader.open(inputPath, { csv: true, chunkSize: options.chunkSize });
  const inputFormat = options.inputFormat ?? (inputPath ? inputFormatOf(inputPath) : undefined) ?? (await reader.sniff());
  let settings: ScoreSettings = { inputFormat, outputFormat: options.format, runId: checkpoint?.runId ?? crypto.randomUUID() };
  let dataStart = { offset: 0, line: 1 };
  try {
    if (inputFormat === "csv") {
      const header = await reader.readHeader();
      settings = { ...settings, csvHeader: header.columns, csvNewline: header.newline, ...mapCsvHeader(layout, header.columns) };
      dataStart = { offset: header.endOffset, line: header.endLine };
    } else {
      reader.useFormat("jsonl");
    }
  } catch (err) {
    reader.close();
    throw err;
  }
  const formatter = new ResultFormatter(layout, model.manifest, options.format);
  const run: Checkpoint["run"] = { model: model.manifest.name, modelVersion: model.version, inputFormat, outputFormat: options.format, chunkSize: options.chunkSize };
  const inputId: Checkpoint["input"] | undefined = inputPath && stat ? { path: inputPath, size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
  if (checkpoint) {
    assertResumable(checkpoint, inputId!, run, cpFile!);
    reader.close();
    reader = InputReader.open(inputPath, { csv: inputFormat === "csv", chunkSize: options.chunkSize, offset: checkpoint.inputOffset, line: checkpoint.nextLine, seq: checkpoint.nextSeq });
  }

  const scorer = makeScorer ? makeScorer(model, settings) : new LocalScorer(model, settings, options.threads);
  let out: Sink | undefined;
  let errors: Sink | undefined;
  try {
    await scorer.start();
    if (checkpoint) {
      out = FileSink.open(outPath!, checkpoint.outBytes);
      errors = FileSink.open(errorsPath, checkpoint.errorsBytes);
    } else {
      out = outPath ? FileSink.open(outPath) : new StreamSink("standard output", process.stdout);
      errors = FileSink.open(errorsPath);
      const header = formatter.header();
      if (header) await out.write(Buffer.from(header));
    }
  } catch (err) {
    reader.close();
    await scorer.close();
    await out?.close();
    if (err instanceof InferlineError || err instanceof UsageError) throw new UsageError(err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code && !code.startsWith("ERR_")) throw new UsageError(`cannot write output: ${(err as Error).message}`);
    throw err;
  }

  const state: WrittenState = checkpoint
    ? { nextSeq: checkpoint.nextSeq, inputOffset: checkpoint.inputOffset, nextLine: checkpoint.nextLine, rows: checkpoint.rows, failures: checkpoint.failures }
    : { nextSeq: 0, inputOffset: dataStart.offset, nextLine: dataStart.line, rows: 0, failures: 0 };

  const mode = options.progress === "auto" ? (process.stderr.isTTY ? "bar" : "lines") : options.progress;
  const progress = new Progress({ ...(stat ? { totalBytes: stat.size } : {}), startBytes: state.inputOffset, startRows: state.rows, mode });

  let lastCheckpoint = 0;
  const saveCheckpoint = (force: boolean): void => {
    if (!resumable) return;
    const now = performance.now();
    if (!force && now - lastCheckpoint < options.checkpointIntervalMs) return;
    lastCheckpoint = now;
    out!.sync();
    errors!.sync();
    writeCheckpoint(cpFile!, { version: 1, runId: settings.runId, input: inputId!, run, ...state, outBytes: out!.size, errorsBytes: errors!.size });
  };
  const writer = new OrderedWriter(out, errors, state, (s) => {
    progress.update({ rows: s.rows, failures: s.failures, bytes: s.inputOffset });
    saveCheckpoint(false);
  });
  saveCheckpoint(true);

  // Ctrl-C / SIGTERM: stop reading, let chunks in flight finish and be written, checkpoint, exit.
  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal) process.exit(signal === "SIGTERM" ? EXIT.sigterm : EXIT.sigint); // a second signal: leave now (the last checkpoint stands)
    stopSignal = signal;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let outputClosed = false;
  let failure: unknown;
  const onStdoutError = (err: NodeJS.ErrnoException): void => {
    outputClosed = true;
    failure ??= err;
    if (err.code !== "EPIPE") process.stderr.write(`inferline: cannot write to standard output: ${err.message}\n`);
  };
  if (!outPath) process.stdout.on("error", onStdoutError);

  const inflight = new Set<Promise<void>>();
  try {
    while (!stopSignal && !outputClosed) {
      if (inflight.size >= scorer.parallelism) {
        await Promise.race(inflight);
        continue;
      }
      const chunk: RawChunk | undefined = await reader.next();
      if (!chunk) break;
      const meta = { endOffset: chunk.endOffset, startLine: chunk.startLine, lineBreaks: chunk.lineBreaks };
      const job: Promise<void> = scorer
        .score(chunk)
        .then((scored) => writer.accept(meta, scored))
        .finally(() => inflight.delete(job));
      inflight.add(job);
    }
  } catch (err) {
    failure = err;
  }
  const settled = await Promise.allSettled(inflight);
  failure ??= settled.find((s) => s.status === "rejected")?.reason;
  await writer.idle().catch((err: unknown) => (failure ??= err));
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  reader.close();
  await scorer.close();

  const complete = !failure && !stopSignal && !outputClosed;
  try {
    if (complete) {
      out.sync();
      errors.sync();
    } else {
      saveCheckpoint(true);
    }
    await out.close();
    await errors.close();
    if (!outPath) process.stdout.off("error", onStdoutError);
    if (complete) {
      if (cpFile) removeCheckpoint(cpFile);
      if (errors.size === 0) fs.rmSync(errorsPath, { force: true });
    }
  } catch (err) {
    failure ??= err;
  }

  const where = `; output: ${outPath ?? "standard output"}${state.failures > 0 ? `; failed rows: ${errorsPath}` : ""}`;
  progress.summary({ rows: state.rows, failures: state.failures, bytes: state.inputOffset }, where);
  if (outputClosed || (failure as NodeJS.ErrnoException | undefined)?.code === "EPIPE") return EXIT.usage; // the reader of standard output went away: nothing more to say
  if (failure) {
    const hint = resumable ? ` (rerun with --resume to continue from row ${state.rows.toLocaleString("en-US")})` : "";
    throw new UsageError(`${(failure as Error).message ?? String(failure)}${hint}`);
  }
  if (stopSignal) {
    process.stderr.write(`inferline score: interrupted${resumable ? `; rerun with --resume to continue (checkpoint ${cpFile})` : ""}\n`);
    return stopSignal === "SIGTERM" ? EXIT.sigterm : EXIT.sigint;
  }
  return state.failures > 0 ? EXIT.rowsFailed : EXIT.ok;
}
