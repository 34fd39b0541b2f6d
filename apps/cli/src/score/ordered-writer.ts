import fs from "node:fs";
import type { Writable } from "node:stream";
import type { RawChunk, ScoredChunk } from "./types.ts";

/** Where results go: a file (size known, can be fsynced and truncated) or a stream such as stdout. */
export interface Sink {
  readonly name: string;
  /** Bytes written so far (for a file: its length). */
  readonly size: number;
  write(bytes: Uint8Array): Promise<void> | void;
  /** Makes everything written so far durable. */
  sync(): void;
  close(): Promise<void>;
}

export class FileSink implements Sink {
  private constructor(
    readonly name: string,
    private readonly fd: number,
    public size: number,
  ) {}

  /** A new (truncated) file, or, with `keep`, the existing file cut back to `keep` bytes. */
  static open(file: string, keep?: number): FileSink {
    if (keep === undefined) return new FileSink(file, fs.openSync(file, "w"), 0);
    const fd = fs.openSync(file, fs.existsSync(file) ? "r+" : "w+");
    const actual = fs.fstatSync(fd).size;
    if (actual < keep) {
      fs.closeSync(fd);
      throw new Error(
        `${file} is shorter (${actual} bytes) than its checkpoint says (${keep} bytes); it was changed since, so the run cannot resume`,
      );
    }
    fs.ftruncateSync(fd, keep);
    return new FileSink(file, fd, keep);
  }

  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.size + done);
    this.size += bytes.length;
  }

  sync(): void {
    fs.fsyncSync(this.fd);
  }

  async close(): Promise<void> {
    fs.closeSync(this.fd);
  }
}

export class StreamSink implements Sink {
  size = 0;
  private failed: Error | undefined;

  constructor(
    readonly name: string,
    private readonly stream: Writable,
  ) {
    stream.on("error", (err) => (this.failed ??= err));
  }

  private closedError(): Error {
    return this.failed ?? Object.assign(new Error(`${this.name} is closed`), { code: "EPIPE" });
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.failed || this.stream.destroyed) throw this.closedError();
    this.size += bytes.length;
    if (!this.stream.write(bytes)) await this.drained();
  }

  /** Waits for 'drain', failing (rather than waiting forever) when the stream errs or closes first. */
  private drained(): Promise<void> {
    if (this.failed || this.stream.destroyed) return Promise.reject(this.closedError());
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.stream.off("drain", onDrain);
        this.stream.off("error", onError);
        this.stream.off("close", onClose);
      };
      const onDrain = (): void => (cleanup(), resolve());
      const onError = (err: Error): void => (cleanup(), reject(err));
      const onClose = (): void => (cleanup(), reject(this.closedError()));
      this.stream.on("drain", onDrain);
      this.stream.on("error", onError);
      this.stream.on("close", onClose);
    });
  }

  sync(): void {}

  async close(): Promise<void> {
    if (this.stream.writableNeedDrain) await this.drained().catch(() => undefined);
  }
}

/** What has been written, in input order: enough to checkpoint. */
export interface WrittenState {
  nextSeq: number;
  inputOffset: number;
  nextLine: number;
  rows: number;
  failures: number;
}

/**
 * Puts scored chunks back in input order and appends them to the output and errors sinks.
 * `written` runs after each chunk is appended (the pipeline checkpoints from there).
 */
export class OrderedWriter {
  private readonly waiting = new Map<
    number,
    { raw: Pick<RawChunk, "endOffset" | "startLine" | "lineBreaks">; scored: ScoredChunk }
  >();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly out: Sink,
    readonly errors: Sink,
    readonly state: WrittenState,
    private readonly written: (state: WrittenState) => void,
  ) {}

  /** Accepts a chunk in any order; the returned promise settles once every chunk it unblocked is written. */
  accept(raw: Pick<RawChunk, "endOffset" | "startLine" | "lineBreaks">, scored: ScoredChunk): Promise<void> {
    this.waiting.set(scored.seq, { raw, scored });
    this.writing = this.writing.then(() => this.flush());
    return this.writing;
  }

  private async flush(): Promise<void> {
    for (let next = this.waiting.get(this.state.nextSeq); next; next = this.waiting.get(this.state.nextSeq)) {
      this.waiting.delete(this.state.nextSeq);
      const { raw, scored } = next;
      if (scored.out.length > 0) await this.out.write(scored.out);
      if (scored.errors.length > 0) await this.errors.write(scored.errors);
      this.state.nextSeq++;
      this.state.inputOffset = raw.endOffset;
      this.state.nextLine = raw.startLine + raw.lineBreaks;
      this.state.rows += scored.rows;
      this.state.failures += scored.failures;
      this.written(this.state);
    }
  }

  /** Chunks received but not yet written (waiting for an earlier one). */
  get backlog(): number {
    return this.waiting.size;
  }

  idle(): Promise<void> {
    return this.writing;
  }
}
