import type pg from "pg";
import type { JobError } from "@inferline/contracts";
import { settleBatch, type BatchSettlement } from "../batch-store.ts";
import { arrayText, elementTexts } from "./arrays.ts";

/** An item's outcome; a result travels as its JSON text, serialised (and size-checked) once by the worker. */
export type ChunkItemOutcome = { status: "succeeded"; resultJson: string } | { status: "failed"; error: JobError };

/** What a chunk write did: items it moved to a terminal state, and the batch's settlement. */
export interface FinishedChunk {
  batchId: string;
  finished: number;
  succeeded: number;
  failed: number;
  /** Chunk-relative indexes of the items this write made `succeeded` (their results may be cached). */
  succeededItems: number[];
  settlement: BatchSettlement | null;
}

/**
 * Most bytes of result JSON one chunk row holds: an item whose result would take its chunk past
 * it fails with `result_too_large`. Keeps a row, and a page of the results stream, bounded
 * (16 KiB per item on average; batch items are meant to be small, large results are jobs).
 */
export const MAX_CHUNK_RESULT_BYTES = 8 * 1024 * 1024;

/**
 * Writes the outcomes of a chunk's items (index-aligned with the claim; undefined where there is
 * none) in the caller's transaction. The row is locked and read first: items that became
 * terminal meanwhile (a cancel) keep their state, so the visible outcome is exactly-once. Also
 * settles the batch's count and forgets the chunk's queue entry.
 */
export async function finishChunk(
  client: pg.PoolClient,
  id: string,
  outcomes: Array<ChunkItemOutcome | undefined>,
): Promise<FinishedChunk | null> {
  const { rows } = await client.query<{
    batchId: string;
    statuses: string[];
    results: string | null;
    errors: string | null;
  }>(`select "batchId", statuses, results::text, errors::text from batch_chunks where id = $1 for update`, [id]);
  const row = rows[0];
  if (!row) return null;
  const statuses = [...row.statuses];
  const results = elementTexts(row.results) ?? statuses.map(() => "null");
  const errors = elementTexts(row.errors) ?? statuses.map(() => "null");
  let succeeded = 0;
  let failed = 0;
  const succeededItems: number[] = [];
  // Bytes, not UTF-16 units: a result of non-ASCII text takes up to three bytes a character.
  let resultBytes = results.reduce((n, r) => n + Buffer.byteLength(r) + 2, 0);
  outcomes.forEach((outcome, i) => {
    if (!outcome || statuses[i] !== "queued") return;
    const bytes = outcome.status === "succeeded" ? Buffer.byteLength(outcome.resultJson) : 0;
    if (outcome.status === "succeeded" && resultBytes + bytes > MAX_CHUNK_RESULT_BYTES) {
      outcome = {
        status: "failed",
        error: {
          code: "result_too_large",
          message: `the results of this item's chunk would exceed ${MAX_CHUNK_RESULT_BYTES} bytes; send large results as jobs`,
        },
      };
    }
    statuses[i] = outcome.status;
    if (outcome.status === "succeeded") {
      results[i] = outcome.resultJson;
      resultBytes += bytes;
      succeeded++;
      succeededItems.push(i);
    } else {
      errors[i] = JSON.stringify(outcome.error);
      failed++;
    }
  });
  const finished = succeeded + failed;
  if (finished > 0) {
    await client.query(
      `update batch_chunks set statuses = $2, results = $3::json, errors = $4::json, succeeded = succeeded + $5, failed = failed + $6,
         "completedAt" = case when $7 then now() else "completedAt" end
       where id = $1`,
      [id, statuses, arrayText(results), arrayText(errors), succeeded, failed, !statuses.includes("queued")],
    );
  }
  if (!statuses.includes("queued")) await client.query(`delete from dispatches where id = $1`, [id]);
  return {
    batchId: row.batchId,
    finished,
    succeeded,
    failed,
    succeededItems,
    settlement: await settleBatch(client, row.batchId, finished),
  };
}
