import type pg from "pg";
import { BATCH_CHUNK_SIZE, type JobView } from "@inferline/contracts";
import { LIST_SCAN_ROWS } from "./jobs/listing.ts";
import { cancelItem, type CanceledItem } from "./batch-chunks/cancel.ts";
import { claimChunk, releaseChunkClaim, type ClaimedChunk } from "./batch-chunks/claim.ts";
import { finishChunk, type ChunkItemOutcome, type FinishedChunk } from "./batch-chunks/finish.ts";
import { listItems, readItem, type ItemListOptions, type ItemPage } from "./batch-chunks/items.ts";
import { chunkOverdue, expireChunks, type ChunkOverdue, type ExpiredChunks } from "./batch-chunks/overdue.ts";
import { resultPages, type ResultPage } from "./batch-chunks/results.ts";

export type { CanceledItem } from "./batch-chunks/cancel.ts";
export type { ClaimedChunk } from "./batch-chunks/claim.ts";
export { MAX_CHUNK_RESULT_BYTES, type ChunkItemOutcome, type FinishedChunk } from "./batch-chunks/finish.ts";
export type { ItemListOptions, ItemPage } from "./batch-chunks/items.ts";
export type { ChunkOverdue, ExpiredChunks } from "./batch-chunks/overdue.ts";
export type { ResultPage } from "./batch-chunks/results.ts";

export interface BatchChunkStoreOptions {
  /** Chunks whose statuses one page of listItems reads at most. Default: LIST_SCAN_ROWS items' worth. */
  listScanChunks?: number;
  /** Chunks whose items one page of listItems shows at most. Default 4. */
  pageChunks?: number;
}

/**
 * Batch items, stored by chunk (see the BatchChunk model): what workers claim and finish, and
 * what the API reads and cancels item by item. Every statement touches one row per chunk, not
 * one per item. The statements live one family per file under batch-chunks/.
 */
export class BatchChunkStore {
  private readonly bounds: { scanChunks: number; pageChunks: number };

  constructor(
    private readonly pool: pg.Pool,
    options: BatchChunkStoreOptions = {},
  ) {
    this.bounds = {
      scanChunks: options.listScanChunks ?? Math.ceil(LIST_SCAN_ROWS / BATCH_CHUNK_SIZE),
      pageChunks: options.pageChunks ?? 4,
    };
  }

  /** Marks the chunk running and returns its items' inputs; null when finished, gone or overdue (see claimChunk). */
  async claim(id: string): Promise<ClaimedChunk | null> {
    return claimChunk(this.pool, id);
  }

  /** Gives back a claim of the chunk whose run was abandoned, not failed, or stopped part way to let other work run (`started`; see releaseChunkClaim). */
  async releaseClaim(id: string, options: { started?: boolean } = {}): Promise<void> {
    return releaseChunkClaim(this.pool, id, options.started === true);
  }

  /** Which deadline a chunk that is not complete has passed, if any (see chunkOverdue). */
  async overdue(id: string): Promise<ChunkOverdue | null> {
    return chunkOverdue(this.pool, id);
  }

  /** Expires the queued items of chunks not started in time, in the caller's transaction (see expireChunks). */
  async expire(select: { ids: string[] } | { limit: number }, client: pg.PoolClient): Promise<ExpiredChunks> {
    return expireChunks(client, select);
  }

  /** Writes the outcomes of a chunk's items, each once, in the caller's transaction (see finishChunk). */
  async finish(
    id: string,
    outcomes: Array<ChunkItemOutcome | undefined>,
    client: pg.PoolClient,
  ): Promise<FinishedChunk | null> {
    return finishChunk(client, id, outcomes);
  }

  /** Cancels one item of the tenant's batch if it is not yet terminal, in the caller's transaction (see cancelItem). */
  async cancelItem(
    tenantId: string,
    batchId: string,
    index: number,
    client: pg.PoolClient,
  ): Promise<CanceledItem | null> {
    return cancelItem(client, tenantId, batchId, index);
  }

  /** One item as a job, or null when the batch is not the tenant's or has no such item (see readItem). */
  async item(tenantId: string, batchId: string, index: number): Promise<JobView | null> {
    return readItem(this.pool, tenantId, batchId, index);
  }

  /** A page of a batch's items as jobs, newest first, below `beforeIndex` (see listItems). */
  async listItems(tenantId: string, batchId: string, options: ItemListOptions): Promise<ItemPage> {
    return listItems(this.pool, tenantId, batchId, options, this.bounds);
  }

  /** A batch's items in submission order, a page of at most `pageBytes` of results at a time (see resultPages). */
  resultPages(batchId: string, pageBytes: number): AsyncGenerator<ResultPage> {
    return resultPages(this.pool, batchId, pageBytes);
  }
}
