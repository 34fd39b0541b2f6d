import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { NotFoundError } from "@inferline/contracts";
import { ModelRepository, type ResolvedModel } from "@inferline/runtime";
import { assertResumable, checkpointPath, readCheckpoint, removeCheckpoint, type Checkpoint } from "./checkpoint.ts";
import { ResultFormatter } from "./formatter.ts";
import { InputReader } from "./input-reader.ts";
import { mapCsvHeader, modelLayout, type ModelLayout } from "./model-layout.ts";
import type { WrittenState } from "./ordered-writer.ts";
import { checkOptions, type ScoreOptions } from "./score-options.ts";
import { UsageError, type InputFormat, type ScoreSettings } from "./types.ts";

/** Everything a run decided before scoring its first chunk. */
export interface ScorePlan {
  model: ResolvedModel;
  layout: ModelLayout;
  settings: ScoreSettings;
  formatter: ResultFormatter;
  /** null for standard input. */
  inputPath: string | null;
  /** The input file's size, for progress (none for standard input). */
  inputSize?: number;
  outPath?: string;
  errorsPath: string;
  /** `<out>.checkpoint.json`, with --out (a leftover one is refused even when reading stdin). */
  checkpointFile?: string;
  /** Checkpoints are written: the input is a file and there is an --out. */
  resumable: boolean;
  /** The checkpoint this run resumes from. */
  checkpoint?: Checkpoint;
  /** What a later checkpoint must match: the input file and the settings that shape the output. */
  inputId?: Checkpoint["input"];
  run: Checkpoint["run"];
  /** Positioned at the first chunk to score. */
  reader: InputReader;
  /** Where writing starts: the checkpoint's state, or the first data row. */
  start: WrittenState;
}

/**
 * Checks the options, resolves the model, applies the checkpoint rules and reads the input's
 * header: every usage error that can be found before anything runs is thrown from here.
 */
export async function planScore(options: ScoreOptions): Promise<ScorePlan> {
  const inputPath = options.input === "-" ? null : path.resolve(options.input);
  const stat = inputPath ? statInput(inputPath) : undefined;
  checkOptions(options, inputPath);
  const model = resolveModel(options);
  const layout = modelLayout(model.manifest, model.version);
  const outPath = options.out ? path.resolve(options.out) : undefined;
  const checkpointFile = outPath ? checkpointPath(outPath) : undefined;
  const resumable = outPath !== undefined && inputPath !== null;
  const checkpoint = checkpointRules(options, checkpointFile, resumable);

  const opened = await openInput(options, inputPath, layout, checkpoint);
  const run: Checkpoint["run"] = {
    model: model.manifest.name,
    modelVersion: model.version,
    inputFormat: opened.settings.inputFormat,
    outputFormat: options.format,
    chunkSize: options.chunkSize,
  };
  const inputId = inputPath && stat ? { path: inputPath, size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
  let { reader } = opened;
  if (checkpoint) {
    assertResumable(checkpoint, inputId!, run, checkpointFile!);
    reader.close();
    reader = InputReader.open(inputPath, {
      csv: run.inputFormat === "csv",
      chunkSize: options.chunkSize,
      offset: checkpoint.inputOffset,
      line: checkpoint.nextLine,
      seq: checkpoint.nextSeq,
    });
  }
  const start: WrittenState = checkpoint
    ? {
        nextSeq: checkpoint.nextSeq,
        inputOffset: checkpoint.inputOffset,
        nextLine: checkpoint.nextLine,
        rows: checkpoint.rows,
        failures: checkpoint.failures,
      }
    : { nextSeq: 0, inputOffset: opened.dataStart.offset, nextLine: opened.dataStart.line, rows: 0, failures: 0 };
  return {
    model,
    layout,
    settings: opened.settings,
    formatter: new ResultFormatter(layout, model.manifest, options.format),
    inputPath,
    ...(stat ? { inputSize: stat.size } : {}),
    ...(outPath ? { outPath } : {}),
    errorsPath: outPath ? `${outPath}.errors.jsonl` : path.resolve("score-errors.jsonl"),
    ...(checkpointFile ? { checkpointFile } : {}),
    resumable,
    ...(checkpoint ? { checkpoint } : {}),
    ...(inputId ? { inputId } : {}),
    run,
    reader,
    start,
  };
}

function statInput(file: string): fs.Stats {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "ENOENT"
        ? `input file ${file} does not exist`
        : `cannot read input file ${file}: ${(err as Error).message}`,
    );
  }
  if (stat.isDirectory()) throw new UsageError(`input ${file} is a folder, not a file`);
  return stat;
}

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
    if (err instanceof NotFoundError)
      throw new UsageError(`${err.message}; the models are: ${repo.names().join(", ") || "(none)"} (in ${repo.root})`);
    throw err;
  }
}

/** --resume continues an interrupted run; without it, a leftover checkpoint is an error (or, with --force, removed). */
function checkpointRules(options: ScoreOptions, file: string | undefined, resumable: boolean): Checkpoint | undefined {
  if (options.resume) {
    if (!resumable) throw new UsageError("--resume needs an input file (not standard input) and --out <file>");
    const checkpoint = readCheckpoint(file!);
    if (!checkpoint) process.stderr.write(`inferline score: no checkpoint ${file}; starting from the beginning\n`);
    return checkpoint;
  }
  if (file && fs.existsSync(file)) {
    if (!options.force)
      throw new UsageError(
        `${file} exists: an earlier run into ${options.out} was interrupted; add --resume to continue it, or --force to start over`,
      );
    removeCheckpoint(file);
  }
  return undefined;
}

function inputFormatOf(file: string): InputFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  return undefined;
}

/** Opens the input, settles its format and, for CSV, maps its header to the model's feature columns. */
async function openInput(
  options: ScoreOptions,
  inputPath: string | null,
  layout: ModelLayout,
  checkpoint: Checkpoint | undefined,
): Promise<{ reader: InputReader; settings: ScoreSettings; dataStart: { offset: number; line: number } }> {
  const reader = InputReader.open(inputPath, { csv: true, chunkSize: options.chunkSize });
  const inputFormat =
    options.inputFormat ?? (inputPath ? inputFormatOf(inputPath) : undefined) ?? (await reader.sniff());
  const settings: ScoreSettings = {
    inputFormat,
    outputFormat: options.format,
    runId: checkpoint?.runId ?? crypto.randomUUID(),
  };
  try {
    if (inputFormat !== "csv") {
      reader.useFormat("jsonl");
      return { reader, settings, dataStart: { offset: 0, line: 1 } };
    }
    const header = await reader.readHeader();
    return {
      reader,
      settings: {
        ...settings,
        csvHeader: header.columns,
        csvNewline: header.newline,
        ...mapCsvHeader(layout, header.columns),
      },
      dataStart: { offset: header.endOffset, line: header.endLine },
    };
  } catch (err) {
    reader.close();
    throw err;
  }
}
