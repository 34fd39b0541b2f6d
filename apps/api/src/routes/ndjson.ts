import type crypto from "node:crypto";
import type { Readable } from "node:stream";
import { InferlineError } from "@inferline/contracts";

const NEWLINE = 0x0a;

export interface NdjsonLimits {
  /** Most bytes of the whole body (413 `body_too_large` past it). */
  bodyBytes: number;
  /** Most bytes of one line (413 `line_too_large` past it, before the rest of the line is read). */
  lineBytes: number;
}

/** Bytes scanned for newlines and bytes decoded to text, counted where the work happens. */
export interface LineWork {
  scannedBytes: number;
  decodedBytes: number;
}

/**
 * Cuts a byte stream into lines in time linear in its length: each byte is scanned for a newline
 * once, when its chunk arrives, and a line is decoded once, when it is complete. Splitting bytes
 * rather than text is safe because 0x0A never occurs inside a UTF-8 multi-byte sequence. A line
 * longer than `maxLineBytes` is refused as soon as that many bytes of it have arrived.
 */
export class LineSplitter {
  readonly work: LineWork = { scannedBytes: 0, decodedBytes: 0 };
  /** Lines completed so far, blank ones included. */
  lines = 0;
  /** The start of the current line, from earlier chunks (each part a view into its chunk). */
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** The lines that `chunk` completes, decoded (blank lines as ""). */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start);
      this.work.scannedBytes += (newline < 0 ? chunk.length : newline + 1) - start;
      if (newline < 0) break;
      this.checkLength(this.partBytes + newline - start);
      out.push(this.decode(chunk.subarray(start, newline)));
      this.lines++;
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.checkLength(this.partBytes + chunk.length - start);
      this.parts.push(chunk.subarray(start));
      this.partBytes += chunk.length - start;
    }
    return out;
  }

  /** The last line when the body does not end with a newline. */
  end(): string | undefined {
    if (this.partBytes === 0) return undefined;
    this.lines++;
    return this.decode(Buffer.alloc(0));
  }

  /** Decodes the pending parts with `tail`, and starts a new line. */
  private decode(tail: Buffer): string {
    const bytes = this.partBytes === 0 ? tail : Buffer.concat([...this.parts, tail], this.partBytes + tail.length);
    this.parts = [];
    this.partBytes = 0;
    this.work.decodedBytes += bytes.length;
    return bytes.toString("utf8");
  }

  private checkLength(bytes: number): void {
    if (bytes <= this.maxLineBytes) return;
    const line = this.lines + 1;
    throw new InferlineError(
      "line_too_large",
      `line ${line} of the NDJSON body is longer than ${this.maxLineBytes} bytes`,
      { status: 413 },
    );
  }
}

/**
 * Parses an NDJSON request body line by line as it streams in, so a 100,000-line body is never
 * held whole. Blank lines are skipped; a line that is not JSON is a 400 naming it; a line over
 * `limits.lineBytes` or a body over `limits.bodyBytes` is a 413. `hash`, when given, is fed every
 * byte read. Stopping early (an error, or the consumer returning) leaves `body` paused, not
 * destroyed, so that the caller can still answer on its socket.
 */
export async function* ndjsonLines(
  body: Readable,
  declaredLength: number | undefined,
  limits: NdjsonLimits,
  hash?: crypto.Hash,
): AsyncGenerator<unknown> {
  const tooLarge = () =>
    new InferlineError("body_too_large", `request body exceeds ${limits.bodyBytes} bytes`, { status: 413 });
  if ((declaredLength ?? 0) > limits.bodyBytes) throw tooLarge();
  const splitter = new LineSplitter(limits.lineBytes);
  let bytes = 0;
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    hash?.update(chunk);
    if (bytes > limits.bodyBytes) throw tooLarge();
    const first = splitter.lines + 1;
    const texts = splitter.push(chunk);
    for (let i = 0; i < texts.length; i++) {
      const item = parseLine(texts[i]!, first + i);
      texts[i] = ""; // each line's text can go once parsed
      if (item !== BLANK) yield item;
    }
  }
  const rest = splitter.end();
  if (rest !== undefined) {
    const item = parseLine(rest, splitter.lines);
    if (item !== BLANK) yield item;
  }
}

const BLANK = Symbol("blank line");

function parseLine(text: string, line: number): unknown {
  const trimmed = text.trim();
  if (!trimmed) return BLANK;
  try {
    return JSON.parse(trimmed);
  } catch (err) {
    throw new InferlineError(
      "malformed_json",
      `line ${line} of the NDJSON body is not valid JSON: ${(err as Error).message}`,
      { status: 400 },
    );
  }
}
