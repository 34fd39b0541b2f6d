import fs from "node:fs";
import path from "node:path";

/**
 * Hop timestamps of single jobs, for the bench's latency breakdown (bench/scenarios/latency.ts):
 * where the milliseconds between a submit and its answer go, across the API and worker processes.
 *
 * Off unless INFERLINE_TRACE_HOPS names a directory; then every process appends lines
 * `jobId,hop,epochMs` (microsecond precision, one clock for all processes of a machine) to
 * `<dir>/<pid>.csv`, buffered and written every 200 ms and at exit. INFERLINE_TRACE_HOPS_SAMPLE
 * (0..1, default 1) traces that share of jobs, chosen by id so that every process picks the same.
 * Off, a hop is one property read: the hot paths keep their marks in place.
 */
export class HopTrace {
  private lines: string[] = [];
  private readonly file: string | undefined;
  /** Jobs whose id's first hex digit is below this are traced (16 = all). */
  private readonly cut: number;

  constructor(dir: string | undefined, sample = 1) {
    this.file = dir ? path.join(dir, `${process.pid}.csv`) : undefined;
    this.cut = Math.round(Math.min(1, Math.max(0, sample)) * 16);
    if (!this.file) return;
    fs.mkdirSync(dir!, { recursive: true });
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

/** This process's trace, from INFERLINE_TRACE_HOPS and INFERLINE_TRACE_HOPS_SAMPLE. */
export const hops = new HopTrace(process.env.INFERLINE_TRACE_HOPS || undefined, Number(process.env.INFERLINE_TRACE_HOPS_SAMPLE ?? 1));
