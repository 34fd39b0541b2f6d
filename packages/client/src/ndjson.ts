/** Bytes gathered before a chunk of a streamed body is handed to fetch: fewer, larger writes. */
const CHUNK_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/** Items as NDJSON text, one JSON line each. */
export function ndjsonText(items: readonly unknown[]): string {
  let text = "";
  for (const item of items) text += `${JSON.stringify(item)}\n`;
  return text;
}

/**
 * Items as a streamed NDJSON body: each is serialised only when fetch asks for more, so an async
 * source of any length is never held whole. Cancelling the stream (the request failed) returns
 * the source's iterator.
 */
export function ndjsonStream(items: Iterable<unknown> | AsyncIterable<unknown>): ReadableStream<Uint8Array> {
  const iterator: Iterator<unknown> | AsyncIterator<unknown> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let text = "";
      while (text.length < CHUNK_BYTES) {
        const next = await iterator.next();
        if (next.done) {
          if (text) controller.enqueue(encoder.encode(text));
          return controller.close();
        }
        text += `${JSON.stringify(next.value)}\n`;
      }
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/**
 * The JSON values of an NDJSON body, one per line, as they arrive: only the current line is held.
 * Leaving the loop early cancels the body.
 */
export async function* ndjsonLines<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let rest = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Only the new text is searched for newlines, so a long line costs its length once.
      const text = decoder.decode(value, { stream: true });
      let start = 0;
      for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
        const line = rest + text.slice(start, newline);
        rest = "";
        start = newline + 1;
        if (line.trim()) yield JSON.parse(line) as T;
      }
      rest += text.slice(start);
    }
    rest += decoder.decode();
    if (rest.trim()) yield JSON.parse(rest) as T;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
