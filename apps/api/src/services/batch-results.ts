import { batchItemId } from "@inferline/contracts";
import type { ResultPage } from "@inferline/db";

/**
 * GET /v1/batches/:id/results as NDJSON text, one string per page (see BatchChunkStore.resultPages):
 * a line `{index, customId, jobId, status, result?, cached?, error?}` per item, in submission order
 * (`status` any JobStatus; an `expired` item's error is `deadline_exceeded`, stored with it;
 * `cached: true` only on an item answered from the result cache, so that a line is otherwise
 * byte for byte what an uncached run writes). Results and
 * errors are spliced in as the JSON text they are stored as, never parsed and serialised again
 * (which would be the API's largest cost when streaming results). Returning this generator stops the pages'.
 */
export async function* batchResultLines(batchId: string, pages: AsyncIterable<ResultPage>): AsyncGenerator<string> {
  for await (const page of pages) yield pageLines(batchId, page);
}

function pageLines(batchId: string, page: ResultPage): string {
  let text = "";
  for (let i = 0; i < page.size; i++) {
    const index = page.firstIndex + i;
    const customId = JSON.stringify(page.customIds[i] ?? null);
    text += `{"index":${index},"customId":${customId},"jobId":"${batchItemId(batchId, index)}","status":"${page.statuses[i]}"`;
    const result = page.results[i];
    const error = page.errors[i];
    if (result && result !== "null") text += `,"result":${result}`;
    if (page.cached[i]) text += `,"cached":true`;
    if (error && error !== "null") text += `,"error":${error}`;
    text += "}\n";
  }
  return text;
}
