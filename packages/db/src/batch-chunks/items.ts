import type pg from "pg";
import {
  batchItemId,
  isTerminal,
  type InferenceResult,
  type JobError,
  type JobPriority,
  type JobStatus,
  type JobView,
} from "@inferline/contracts";
import { itemStatus } from "./arrays.ts";

export interface ItemListOptions {
  /** Items below this index only. */
  beforeIndex: number;
  limit: number;
  status?: JobStatus;
  /** Items of a batch of this model only. */
  model?: string;
}

/** A page of a batch's items, and where the next starts (null: no items left below it). */
export interface ItemPage {
  jobs: JobView[];
  nextBefore: number | null;
}

/** How much one page of listItems reads. */
export interface ItemPageBounds {
  /** Chunks whose statuses it reads at most. */
  scanChunks: number;
  /** Chunks whose items it shows at most. */
  pageChunks: number;
}

/** One item of a chunk, with only its own elements of the chunk's arrays. */
interface ItemRow {
  firstIndex: number;
  size: number;
  customId: string | null;
  status: string;
  cached: boolean;
  result: string | null;
  error: string | null;
  attempts: number;
  startedAt: Date | null;
  completedAt: Date | null;
}

/** The batch columns an item's job view shows. */
interface ItemBatchRow {
  batchId: string;
  model: string;
  version: string;
  priority: JobPriority;
  metadata: Record<string, string>;
  createdAt: Date;
  canceledAt: Date | null;
}

/** A chunk as listItems first reads it: what its items' statuses need. */
interface ScannedChunk {
  firstIndex: number;
  size: number;
  statuses: string[];
  startedAt: Date | null;
}

/** The items a page shows, by chunk and index in it; where the next page starts when it ended early. */
interface PickedItems {
  items: Array<{ firstIndex: number; i: number }>;
  nextBefore: number | null;
}

/** One item a page of listItems shows, with only its own elements of its chunk's arrays. */
type ListedItemRow = ItemRow & ItemBatchRow & { n: number };

/**
 * An item's columns (`c` its chunk, `b` its batch) but its own elements of the chunk's arrays,
 * which each statement extracts its way.
 */
const ITEM_COLUMNS = `c.attempts, c."startedAt", c."completedAt",
  b.id as "batchId", b.model, b.version, b.priority, b.metadata, b."createdAt", b."canceledAt"`;

/**
 * One item as a job, or null when the batch is not the tenant's or has no such item. Reads only
 * that item's elements of its chunk's arrays: PostgreSQL extracts them, so a chunk of 8 MiB of
 * results costs the API one item's bytes.
 */
export async function readItem(
  pool: pg.Pool,
  tenantId: string,
  batchId: string,
  index: number,
): Promise<JobView | null> {
  const { rows } = await pool.query<ItemRow & ItemBatchRow>(
    `select c."firstIndex", c.size, c."customIds"[k.n] as "customId", c.statuses[k.n] as status,
       coalesce(c.cached[k.n], false) as cached, (c.results -> (k.n - 1))::text as result, (c.errors -> (k.n - 1))::text as error,
       ${ITEM_COLUMNS}
     from batch_chunks c join batches b on b.id = c."batchId"
       cross join lateral (select $3::int - c."firstIndex" + 1 as n) k
     where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" <= $3
     order by c."firstIndex" desc limit 1`,
    [batchId, tenantId, index],
  );
  const row = rows[0];
  if (!row || index >= row.firstIndex + row.size) return null;
  return itemView(row, index);
}

/**
 * A page of a batch's items as jobs, newest (highest index) first, below `beforeIndex`,
 * optionally of one status. Reads the statuses of at most `scanChunks` chunks below it, then
 * only the page's items' elements of at most `pageChunks` chunks' arrays (PostgreSQL extracts
 * them), so a page of sparse matches reads neither a chunk per item nor whole chunks of
 * results. `nextBefore` is where the next page starts, null when no item is left; a page may
 * hold fewer than `limit` items, even none, while it is not null.
 */
export async function listItems(
  pool: pg.Pool,
  tenantId: string,
  batchId: string,
  options: ItemListOptions,
  bounds: ItemPageBounds,
): Promise<ItemPage> {
  const { rows: scanned } = await pool.query<ScannedChunk>(
    `select c."firstIndex", c.size, c.statuses, c."startedAt" from batch_chunks c join batches b on b.id = c."batchId"
     where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" < $3 and ($4::text is null or b.model = $4)
     order by c."firstIndex" desc limit $5`,
    [batchId, tenantId, options.beforeIndex, options.model ?? null, bounds.scanChunks],
  );
  const page = pickItems(scanned, options, bounds.pageChunks);
  // Not ended inside the scan: go on below the lowest chunk read, unless the scan reached index 0.
  const lowest = scanned.length === bounds.scanChunks ? scanned[scanned.length - 1]!.firstIndex : 0;
  const nextBefore = page.nextBefore ?? (lowest > 0 ? lowest : null);
  if (page.items.length === 0) return { jobs: [], nextBefore };
  const rows = await listedItems(pool, tenantId, batchId, page.items);
  const jobs = rows.flatMap((row) => {
    const view = itemView(row, row.firstIndex + row.n - 1);
    // Read a moment after the statuses: an item that has moved on since is left out.
    return !options.status || view.status === options.status ? [view] : [];
  });
  return { jobs, nextBefore };
}

/** The picked items, highest index first, each with its own elements of its chunk's arrays. */
async function listedItems(
  pool: pg.Pool,
  tenantId: string,
  batchId: string,
  items: PickedItems["items"],
): Promise<ListedItemRow[]> {
  const { rows } = await pool.query<ListedItemRow>(
    `with picked as (select * from unnest($3::int[], $4::int[]) as p(first, n))
     select c."firstIndex", x.n, c.size, c."customIds"[x.n] as "customId", c.statuses[x.n] as status,
       coalesce(c.cached[x.n], false) as cached, x.r::text as result, x.e::text as error,
       ${ITEM_COLUMNS}
     from batch_chunks c join batches b on b.id = c."batchId" and b."tenantId" = $2
       cross join lateral
         rows from (generate_series(1, c.size), json_array_elements(c.results), json_array_elements(c.errors)) as x(n, r, e)
     where c."batchId" = $1 and c."firstIndex" = any($3::int[])
       and (c."firstIndex", x.n) in (select first, n from picked)
     order by c."firstIndex" + x.n desc`,
    [batchId, tenantId, items.map((it) => it.firstIndex), items.map((it) => it.i + 1)],
  );
  return rows;
}

/**
 * The items of a page among the scanned chunks (newest first): up to `limit` of the status, from
 * at most `maxChunks` chunks. `nextBefore` when the page ended before the scanned chunks did:
 * below its last item.
 */
function pickItems(scanned: ScannedChunk[], options: ItemListOptions, maxChunks: number): PickedItems {
  const items: PickedItems["items"] = [];
  let chunks = 0;
  for (const chunk of scanned) {
    let shown = false;
    for (let i = Math.min(chunk.size, options.beforeIndex - chunk.firstIndex) - 1; i >= 0; i--) {
      if (options.status && itemStatus(chunk.statuses[i]!, chunk.startedAt !== null) !== options.status) continue;
      const last = items[items.length - 1];
      const full = items.length === options.limit || (!shown && chunks === maxChunks);
      if (last && full) return { items, nextBefore: last.firstIndex + last.i };
      if (!shown) chunks++;
      shown = true;
      items.push({ firstIndex: chunk.firstIndex, i });
    }
  }
  return { items, nextBefore: null };
}

/** The item at `index`, read with its own elements of its chunk's arrays, as a job. */
function itemView(row: ItemRow & ItemBatchRow, index: number): JobView {
  const status = itemStatus(row.status, row.startedAt !== null);
  // Answered from the cache when the batch was created: never run, whatever its chunk does since.
  const cached = row.cached === true;
  const view: JobView = {
    id: batchItemId(row.batchId, index),
    status,
    model: row.model,
    version: row.version,
    priority: row.priority,
    createdAt: row.createdAt.toISOString(),
    attempts: cached ? 0 : row.attempts,
    metadata: row.metadata,
    batchId: row.batchId,
  };
  if (cached) {
    view.startedAt = view.completedAt = view.createdAt;
  } else {
    if (row.startedAt) view.startedAt = row.startedAt.toISOString();
    // Items finish with their chunk; one canceled on its own carries the batch's cancel time if any.
    const completedAt = isTerminal(status) ? (row.completedAt ?? row.canceledAt) : null;
    if (completedAt) view.completedAt = completedAt.toISOString();
  }
  if (row.customId) view.customId = row.customId;
  if (row.result && row.result !== "null") view.result = JSON.parse(row.result) as InferenceResult;
  if (cached) view.cached = true;
  if (row.error && row.error !== "null") view.error = JSON.parse(row.error) as JobError;
  return view;
}
