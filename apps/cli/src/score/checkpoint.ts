import fs from "node:fs";
import path from "node:path";
import { UsageError } from "./types.ts";

/**
 * A resumable run's progress, written after the output and errors files were fsynced up to the
 * recorded sizes. Everything past those sizes (rows written after the last checkpoint, before a
 * crash) is cut off on resume and scored again from `inputOffset`, so no row is lost or doubled.
 */
export interface Checkpoint {
  version: 1;
  /** Names this run (kept on resume): remote batches are created under keys derived from it. */
  runId?: string;
  input: { path: string; size: number; mtimeMs: number };
  /** What must match for the output to continue the same way. */
  run: { model: string; modelVersion: string; inputFormat: string; outputFormat: string; chunkSize: number };
  /** Input bytes fully scored and written. */
  inputOffset: number;
  /** 1-based input line at inputOffset. */
  nextLine: number;
  /** Next chunk number (for progress only). */
  nextSeq: number;
  outBytes: number;
  errorsBytes: number;
  rows: number;
  failures: number;
}

export const checkpointPath = (out: string): string => `${out}.checkpoint.json`;

export function readCheckpoint(file: string): Checkpoint | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const cp = JSON.parse(text) as Checkpoint;
    if (cp.version !== 1 || typeof cp.inputOffset !== "number") throw new Error("unknown layout");
    return cp;
  } catch (err) {
    throw new UsageError(
      `checkpoint ${file} is unreadable (${(err as Error).message}); delete it, or use --force to start over`,
    );
  }
}

/** Checks that a checkpoint belongs to this input and these settings; says what differs otherwise. */
export function assertResumable(
  cp: Checkpoint,
  input: Checkpoint["input"],
  run: Checkpoint["run"],
  file: string,
): void {
  const faults: string[] = [];
  if (path.resolve(cp.input.path) !== path.resolve(input.path)) faults.push(`it is for input ${cp.input.path}`);
  else if (cp.input.size !== input.size || cp.input.mtimeMs !== input.mtimeMs)
    faults.push("the input file changed since");
  for (const key of Object.keys(run) as Array<keyof Checkpoint["run"]>) {
    if (cp.run[key] !== run[key])
      faults.push(`it was made with ${key} ${JSON.stringify(cp.run[key])}, not ${JSON.stringify(run[key])}`);
  }
  if (faults.length > 0)
    throw new UsageError(`cannot resume from ${file}: ${faults.join("; ")}; use --force to start over`);
}

/** Writes the checkpoint atomically and durably (temp file, fsync, rename, fsync of the folder). */
export function writeCheckpoint(file: string, cp: Checkpoint): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeSync(fd, JSON.stringify(cp));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  try {
    const dir = fs.openSync(path.dirname(file), "r");
    fs.fsyncSync(dir);
    fs.closeSync(dir);
  } catch {
    // Some filesystems refuse to fsync a folder; the rename is still atomic.
  }
}

export function removeCheckpoint(file: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.tmp`, { force: true });
}
