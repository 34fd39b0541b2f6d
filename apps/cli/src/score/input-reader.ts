import fs from "node:fs";
import type { Readable } from "node:stream";
import Papa from "papaparse";
import { countLineBreaks, firstRecordEnd, lastRecordEnd } from "./record-bounds.ts";
import { UsageError, type RawChunk } from "./types.ts";

/** A record longer than this means a broken file (say, an unterminated quote), not a long row. */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const READ_BYTES = 1024 * 1024;

/**
 * Reads an input stream as chunks of whole records. A chunk ends at the last record boundary
 * within `chunkSize` bytes of its start (or, for a longer record, the first boundary after), so
 * the cuts depend only on the bytes, never on how the stream delivered them: a resumed run,
 * starting at a recorded cut, cuts the rest exactly as an uninterrupted run did.
 */
export class InputReader {
  private pending: Buffer = Buffer.alloc(0);
  private eof = false;
  private readonly iterator: AsyncIterator<Buffer>;
  private seq = 0;

  private constructor(
    private readonly stream: Readable,
    private csv: boolean,
    private readonly chunkSize: number,
    /** Absolute input offset of `pending[0]`. */
    public offset: number,
    /** 1-based input line of `pending[0]`. */
    public line: number,
  ) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** `path` null reads standard input. */
  static open(
    path: string | null,
    options: { csv: boolean; chunkSize: number; offset?: number; line?: number; seq?: number },
  ): InputReader {
    const offset = options.offset ?? 0;
    const stream =
      path === null ? process.stdin : fs.createReadStream(path, { start: offset, highWaterMark: READ_BYTES });
    const reader = new InputReader(stream, options.csv, options.chunkSize, offset, options.line ?? 1);
    reader.seq = options.seq ?? 0;
    return reader;
  }

  /** Sets how records end: CSV (quote-aware) or JSONL (every line feed). */
  useFormat(format: "csv" | "jsonl"): void {
    this.csv = format === "csv";
  }

  /** Guesses the format from the first byte that is not blank: `{` is JSONL, anything else CSV. */
  async sniff(): Promise<"csv" | "jsonl"> {
    await this.skipBom();
    for (;;) {
      const text = this.pending.toString("utf8", 0, Math.min(this.pending.length, 4096));
      const first = text.trimStart()[0];
      if (first !== undefined || this.pending.length > 4096 || !(await this.fill())) {
        this.csv = first !== "{";
        return this.csv ? "csv" : "jsonl";
      }
    }
  }

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.iterator.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    this.pending = this.pending.length === 0 ? r.value : Buffer.concat([this.pending, r.value]);
    return true;
  }

  private take(n: number): Uint8Array {
    const bytes = new Uint8Array(n); // its own ArrayBuffer, so it can be transferred to a thread
    bytes.set(this.pending.subarray(0, n));
    this.pending = this.pending.subarray(n);
    this.offset += n;
    return bytes;
  }

  /** Skips a UTF-8 byte order mark at the very start of the input. */
  private async skipBom(): Promise<void> {
    if (this.offset !== 0) return;
    while (this.pending.length < 3 && (await this.fill()));
    if (this.pending[0] === 0xef && this.pending[1] === 0xbb && this.pending[2] === 0xbf) {
      this.pending = this.pending.subarray(3);
      this.offset = 3;
    }
  }

  /** Reads the CSV header record: its column names, and the input offset/line just past it. */
  async readHeader(): Promise<{ columns: string[]; newline: "\n" | "\r\n"; endOffset: number; endLine: number }> {
    await this.skipBom();
    let end: number;
    while ((end = firstRecordEnd(this.pending, 0, true)) === -1) {
      if (this.pending.length > MAX_RECORD_BYTES)
        throw new UsageError("the CSV header is not terminated (an unclosed quote?)");
      if (!(await this.fill())) break;
    }
    if (end === -1) end = this.pending.length;
    const bytes = this.take(end);
    this.line += countLineBreaks(bytes);
    const text = Buffer.from(bytes).toString("utf8");
    if (text.trim() === "")
      throw new UsageError("the input is empty: a CSV input needs a header line naming its columns");
    const newline = text.endsWith("\r\n") ? "\r\n" : "\n";
    const parsed = Papa.parse<string[]>(text, { delimiter: ",", newline });
    if (parsed.errors.length > 0) throw new UsageError(`cannot parse the CSV header: ${parsed.errors[0]!.message}`);
    return { columns: parsed.data[0] ?? [], newline, endOffset: this.offset, endLine: this.line };
  }

  /** The next chunk, or undefined at the end of the input. */
  async next(): Promise<RawChunk | undefined> {
    if (this.seq === 0 && this.offset === 0) await this.skipBom();
    for (;;) {
      if (this.pending.length === 0 && !(await this.fill())) return undefined;
      if (this.pending.length >= this.chunkSize || this.eof) {
        let end = lastRecordEnd(this.pending, this.chunkSize, this.csv);
        if (end === -1) end = firstRecordEnd(this.pending, this.chunkSize, this.csv);
        if (end === -1 && this.eof) end = this.pending.length;
        if (end !== -1) {
          const startLine = this.line;
          const bytes = this.take(end);
          const lineBreaks = countLineBreaks(bytes);
          this.line += lineBreaks;
          return { seq: this.seq++, bytes, startLine, endOffset: this.offset, lineBreaks };
        }
        if (this.pending.length > MAX_RECORD_BYTES) {
          throw new UsageError(
            `line ${this.line}: a record longer than ${MAX_RECORD_BYTES} bytes (an unclosed quote?)`,
          );
        }
      }
      if (!(await this.fill()) && this.pending.length === 0) return undefined;
    }
  }

  close(): void {
    if (this.stream !== process.stdin) this.stream.destroy();
    else process.stdin.pause();
  }
}
