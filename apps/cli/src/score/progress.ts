import cliProgress from "cli-progress";

export interface ProgressOptions {
  /** Input bytes to score (file size), when known; stdin has none. */
  totalBytes?: number;
  /** Bytes and rows already done by an earlier run (resume). */
  startBytes: number;
  startRows: number;
  mode: "bar" | "lines" | "off";
  /** Seconds between plain lines. */
  intervalSeconds?: number;
}

export interface ProgressSnapshot {
  rows: number;
  failures: number;
  bytes: number;
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Progress on stderr: a cli-progress bar on a terminal (rows, rows/s, failures, ETA from input
 * bytes read against the file size), otherwise a plain line every few seconds; and the summary.
 */
export class Progress {
  private readonly started = performance.now();
  private bar: cliProgress.SingleBar | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last: ProgressSnapshot;

  constructor(private readonly options: ProgressOptions) {
    this.last = { rows: options.startRows, failures: 0, bytes: options.startBytes };
    if (options.mode === "bar") {
      const known = options.totalBytes !== undefined && options.totalBytes > 0;
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: known
            ? "scoring |{bar}| {percentage}% | {rowsDone} rows | {rate} rows/s | {failures} failed | ETA {eta_formatted}"
            : "scoring | {rowsDone} rows | {rate} rows/s | {failures} failed",
          hideCursor: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(known ? options.totalBytes! : 1, options.startBytes, {
        rowsDone: fmt(options.startRows),
        rate: "0",
        failures: "0",
      });
    } else if (options.mode === "lines") {
      this.timer = setInterval(() => this.line(), (options.intervalSeconds ?? 5) * 1000);
      this.timer.unref();
    }
  }

  private rate(rows: number): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? (rows - this.options.startRows) / seconds : 0;
  }

  update(s: ProgressSnapshot): void {
    this.last = s;
    if (this.bar) {
      const known = this.options.totalBytes !== undefined && this.options.totalBytes > 0;
      this.bar.update(known ? s.bytes : 0, {
        rowsDone: fmt(s.rows),
        rate: fmt(this.rate(s.rows)),
        failures: fmt(s.failures),
      });
    }
  }

  private line(): void {
    const s = this.last;
    const total = this.options.totalBytes;
    const rate = this.rate(s.rows);
    let text = `inferline score: ${fmt(s.rows)} rows, ${fmt(rate)} rows/s, ${fmt(s.failures)} failed`;
    if (total) {
      const seconds = (performance.now() - this.started) / 1000;
      const bytesRate = (s.bytes - this.options.startBytes) / seconds;
      text += `, ${((100 * s.bytes) / total).toFixed(1)}% of the input, ETA ${duration(bytesRate > 0 ? (total - s.bytes) / bytesRate : Number.POSITIVE_INFINITY)}`;
    }
    process.stderr.write(`${text}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.bar?.stop();
    this.bar = undefined;
  }

  /** The closing line: rows, failures, rows/s and wall time of this run. */
  summary(s: ProgressSnapshot, extra: string): void {
    this.stop();
    const seconds = (performance.now() - this.started) / 1000;
    const sessionRows = s.rows - this.options.startRows;
    const resumed =
      this.options.startRows > 0
        ? ` (${fmt(sessionRows)} in this run, resumed after ${fmt(this.options.startRows)})`
        : "";
    process.stderr.write(
      `inferline score: ${fmt(s.rows)} rows scored, ${fmt(s.failures)} failed${resumed}, ${fmt(seconds > 0 ? sessionRows / seconds : 0)} rows/s, wall time ${seconds.toFixed(2)} s${extra}\n`,
    );
  }
}
