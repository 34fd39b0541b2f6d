import { batchItemId } from "@inferline/contracts";
import type { ResultChunk } from "@inferline/db";

/**
 * GET /v1/batches/:id/results as NDJSON text, one string per page of chunks: a line
 * `{index, customId, jobId, status, result?, cached?, error?}` per item, in submission order
 * (`status` any JobStatus; an `expired` item's error is `deadline_exceeded`, stored with it;
 * `cached: true` only on an item answered from the result cache, so that a line is otherwise
 * byte for byte what an uncached run writes). Results and
 * errors are spliced in as the JSON text they are stored as, never parsed and serialised again
 * (that was the API's largest cost streaming results). Returning this generator stops the pages'.
 */
export async function* batchResultLines(batchId: string, pages: AsyncIterable<ResultChunk[]>): AsyncGenerator<string> {
  for await (const page of pages) {
    let text = "";
    for (const chunk of page) text += chunkLines(batchId, chunk);
    yield text;
  }
}

function chunkLines(batchId: string, chunk: ResultChunk): string {
  let text = "";
  for (let i = 0; i < chunk.size; i++) {
    const index = chunk.firstIndex + i;
    text += `{"index":${index},"customId":${JSON.stringify(chunk.customIds[i] ?? null)},"jobId":"${batchItemId(batchId, index)}","status":"${chunk.statuses[i]}"`;
    const result = chunk.results?.[i];
    const error = chunk.errors?.[i];
    if (result && result !== "null") text += `,"result":${result}`;
    if (chunk.cached[i]) text += `,"cached":true`;
    if (error && error !== "null") text += `,"error":${error}`;
    text += "}\n";
  }
  return text;
}
