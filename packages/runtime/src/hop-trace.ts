import fs from "node:fs";
import path from "node:path";

/**
 * Hop timestamps of single jobs, for the bench's latency breakdown (bench/scenarios/latency.ts):
 * where the milliseconds between a submit and its answer go, across the API and worker processes.
 *
 * Off until started with a directory (INFERLINE_TRACE_HOPS); then every process appends lines
 * `jobId,hop,epochMs` (microsecond precision, one clock for all processes of a machine) to
 * `<dir>/<pid>.csv`, buffered and written every 200 ms and at exit. `sample`
 * (INFERLINE_TRACE_HOPS_SAMPLE, 0..1, default 1) traces that share of jobs, chosen by id so that
 * every process picks the same. Off, a hop is one property read: the hot paths keep their marks in place.
 */
export class HopTrace {
  private lines: string[] = [];
  private file: string | undefined;
  /** Jobs whose id's first hex digit is below this are traced (16 = all). */
  private cut = 16;

  /** Off without `dir`; `start` turns it on later. */
  constructor(dir?: string, sample = 1) {
    if (dir) this.start(dir, sample);
  }

  /**
   * Starts tracing into `dir` (nothing without one). The first start of a trace wins: an API and a
   * worker started in one process share its file.
   */
  start(dir: string | undefined, sample = 1): void {
    if (!dir || this.file) return;
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `${process.pid}.csv`);
    this.cut = Math.round(Math.min(1, Math.max(0, sample)) * 16);
    setInterval(() => this.flush(), 200).unref();
    process.on("exit", () => this.flush());
  }

  get enabled(): boolean {
    return this.file !== undefined;
  }

  /** A time to pass to `mark` later (when the job's id is not known yet); 0 when off. */
  now(): number {
    return this.file ? performance.timeOrigin + performance.now() : 0;
  }

  /** Records that `jobId` reached `hop` (now, or at `at` from `now()`). */
  mark(jobId: string, hop: string, at?: number): void {
    if (!this.file || !this.sampled(jobId)) return;
    this.lines.push(`${jobId},${hop},${(at ?? performance.timeOrigin + performance.now()).toFixed(3)}\n`);
  }

  markAll(jobIds: readonly string[], hop: string): void {
    if (!this.file) return;
    const at = this.now();
    for (const id of jobIds) this.mark(id, hop, at);
  }

  private sampled(jobId: string): boolean {
    return this.cut >= 16 || parseInt(jobId[0] ?? "f", 16) < this.cut;
  }

  /** Writes what is buffered now (also done every 200 ms and at exit). */
  flush(): void {
    if (!this.file || this.lines.length === 0) return;
    const text = this.lines.join("");
    this.lines = [];
    fs.appendFileSync(this.file, text);
  }
}

/**
 * This process's trace, which the API's and the worker's hot paths mark. Off at import (it reads
 * no environment): startApi and startWorker start it from their parsed env (INFERLINE_TRACE_HOPS,
 * INFERLINE_TRACE_HOPS_SAMPLE). One per process, since its file is the process's own.
 */
export const hops = new HopTrace();
