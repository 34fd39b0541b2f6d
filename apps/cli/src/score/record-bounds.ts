/**
 * Record boundaries. A JSONL record ends at every line feed; a CSV record ends at a line feed
 * outside double quotes (RFC 4180: a quoted field may hold line breaks, `""` is an escaped quote,
 * so quote parity tells inside from outside). Neither byte occurs inside a UTF-8 multi-byte
 * sequence, so scanning bytes is safe.
 */
const LF = 0x0a;
const QUOTE = 0x22;

/**
 * Offset just past the last record boundary in `bytes[0, limit)`, or -1 when there is none.
 * `bytes` must start at a record boundary.
 */
export function lastRecordEnd(bytes: Uint8Array, limit: number, csv: boolean): number {
  const window = limit < bytes.length ? bytes.subarray(0, limit) : bytes;
  if (!csv || window.indexOf(QUOTE) === -1) {
    const at = window.lastIndexOf(LF);
    return at === -1 ? -1 : at + 1;
  }
  let inQuotes = false;
  let last = -1;
  for (let i = 0; i < window.length; i++) {
    const b = window[i];
    if (b === QUOTE) inQuotes = !inQuotes;
    else if (b === LF && !inQuotes) last = i + 1;
  }
  return last;
}

/**
 * Offset just past the first record boundary at or after `from` in `bytes`, or -1 when there is
 * none. `bytes` must start at a record boundary.
 */
export function firstRecordEnd(bytes: Uint8Array, from: number, csv: boolean): number {
  if (!csv || bytes.indexOf(QUOTE) === -1) {
    const at = bytes.indexOf(LF, from);
    return at === -1 ? -1 : at + 1;
  }
  let inQuotes = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === QUOTE) inQuotes = !inQuotes;
    else if (b === LF && !inQuotes && i >= from) return i + 1;
  }
  return -1;
}

/** Number of line feeds in `bytes`. */
export function countLineBreaks(bytes: Uint8Array): number {
  let n = 0;
  for (let at = bytes.indexOf(LF); at !== -1; at = bytes.indexOf(LF, at + 1)) n++;
  return n;
}

/**
 * Splits CSV text (whole records) into records, quote-aware: the text of each and the 0-based
 * line (relative to the text) where it starts.
 */
export function splitCsvRecords(text: string): Array<{ text: string; line: number }> {
  const out: Array<{ text: string; line: number }> = [];
  let inQuotes = false;
  let start = 0;
  let line = 0;
  let startLine = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) inQuotes = !inQuotes;
    else if (c === LF) {
      line++;
      if (!inQuotes) {
        out.push({ text: text.slice(start, i + 1), line: startLine });
        start = i + 1;
        startLine = line;
      }
    }
  }
  if (start < text.length) out.push({ text: text.slice(start), line: startLine });
  return out;
}
