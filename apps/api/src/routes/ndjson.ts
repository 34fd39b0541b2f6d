import type crypto from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import type { Request } from "express";
import { InferlineError } from "@inferline/contracts";

/**
 * Parses an NDJSON request body line by line as it streams in, so a 100,000-line body is never
 * held as one string. Blank lines are skipped; a line that is not JSON is a 400 naming it; more
 * than `limitBytes` is a 413. `hash`, when given, is fed every byte of the body.
 */
export async function* ndjsonLines(req: Request, limitBytes: number, hash?: crypto.Hash): AsyncGenerator<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limitBytes) throw new InferlineError("body_too_large", `request body exceeds ${limitBytes} bytes`, { status: 413 });
  const decoder = new StringDecoder("utf8");
  let bytes = 0;
  let pending = "";
  let line = 0;
  const parse = (text: string): unknown => {
    line++;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new InferlineError("malformed_json", `line ${line} of the NDJSON body is not valid JSON: ${(err as Error).message}`, { status: 400 });
    }
  };
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    hash?.update(chunk);
    if (bytes > limitBytes) throw new InferlineError("body_too_large", `request body exceeds ${limitBytes} bytes`, { status: 413 });
    pending += decoder.write(chunk);
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (text) yield parse(text);
      else line++;
    }
  }
  const rest = (pending + decoder.end()).trim();
  if (rest) yield parse(rest);
}
