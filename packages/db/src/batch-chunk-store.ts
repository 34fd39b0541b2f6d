import type pg from "pg";
import { BATCH_CHUNK_SIZE, batchItemId, isTerminal, type FlatTensor, type InferenceResult, type JobError, type JobPriority, type JobStatus, type JobView } from "@inferline/contracts";
import { settleBatch, type BatchSettlement } from "./batch-store.ts";
import { LIST_SCAN_ROWS } from "./job-listing.ts";
import { deleteEntries, type EmptiedEntry } from "./dispatch-store.ts";

/** A chunk a worker took: the inputs of its items (null for those already terminal: canceled, or answered from the cache). */
export interface ClaimedChunk {
  id: string;
  batchId: string;
  tenantId: string;
  model: string;
  version: string;
  requestedOutputs: string[];
  firstIndex: number;
  attempts: number;
  items: Array<FlatTensor[] | null>;
  /** Each item's result-cache digest (index-aligned; empty when the model has no cache): where the worker stores its result. */
  cacheKeys: string[];
  /** The W3C traceparent stored with the batch (null: not traced). */
  traceParent: string | null;
}

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

/** What canceling one item did: the batch's settlement, and its chunk's queue entry when the item was its last. */
export interface CanceledItem {
  settlement: BatchSettlement | null;
  emptied: EmptiedEntry[];
}

/** Which deadline a chunk not yet complete has passed (see BatchChunkStore.overdue). */
export interface ChunkOverdue {
  batchId: string;
  /** Not started by its batch's queue deadline: its queued items expire. */
  expire: boolean;
  /** Its batch is past its Cancel-After time: the batch is canceled. */
  cancel: boolean;
}

/** What BatchChunkStore.expire did: chunks it took and items it expired, per batch the settlement. */
export interface ExpiredChunks {
  chunks: number;
  items: number;
  /** The batches whose items expired (long-polls on a batch and on its items listen on its id). */
  batchIds: string[];
  settlements: BatchSettlement[];
  /** Items expired per model (the workers count them by model). */
  byModel: Array<{ model: string; items: number }>;
  /** The chunks' queue entries, whose rows it deleted (no worker had taken them). */
  emptied: EmptiedEntry[];
}

interface ChunkRow {
  firstIndex: number;
  size: number;
  customIds: Array<string | null>;
  statuses: string[];
  /** Which items were answered from the result cache (empty: none). */
  cached: boolean[];
  /** Each item's result / error as JSON text ("null" for none); see elementTexts. */
  results: string | null;
  errors: string | null;
  attempts: number;
  startedAt: Date | null;
  completedAt: Date | null;
}

/**
 * Consecutive items of one chunk as the results stream reads them (see BatchChunkStore.resultPages):
 * index-aligned arrays of `size` items from `firstIndex`.
 */
export interface ResultPage {
  firstIndex: number;
  size: number;
  customIds: Array<string | null>;
  /** Each item's status as the API shows it: its own once terminal, else its chunk's. */
  statuses: JobStatus[];
  /** Which items were answered from the result cache. */
  cached: boolean[];
  /** Each item's result and error as the JSON text stored ("null" or null for none). */
  results: Array<string | null>;
  errors: Array<string | null>;
}

/** One item of a results page, with its own elements of its chunk's arrays (see BatchChunkStore.resultPages). */
interface ResultItemRow {
  customId: string | null;
  status: string;
  /** Whether its chunk has started (an item not terminal then shows `running`). */
  started: boolean;
  cached: boolean;
  result: string | null;
  error: string | null;
}

/** One item of a chunk, with only its own elements of the chunk's arrays (see BatchChunkStore.item). */
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

export interface ItemListOptions {
  /** Items below this index only. */
  beforeIndex: number;
  limit: number;
  status?: JobStatus;
  /** Items of a batch of this model only. */
  model?: string;
}

export interface BatchChunkStoreOptions {
  /** Chunks whose statuses one page of listItems reads at most. Default: LIST_SCAN_ROWS items' worth. */
  listScanChunks?: number;
  /** Chunks whose items one page of listItems shows at most. Default 4. */
  pageChunks?: number;
}

/** A page of a batch's items, and where the next starts (null: no items left below it). */
export interface ItemPage {
  jobs: JobView[];
  nextBefore: number | null;
}

/** The items a page shows, by chunk and index in it; where the next page starts when it ended early. */
interface PickedItems {
  items: Array<{ firstIndex: number; i: number }>;
  nextBefore: number | null;
}

/** A chunk as listItems first reads it: what its items' statuses need. */
type ScannedChunk = Pick<ChunkRow, "firstIndex" | "size" | "statuses" | "startedAt">;

/** One item a page of listItems shows, with only its own elements of its chunk's arrays. */
type ListedItemRow = ItemRow & ItemBatchRow & { n: number };

/**
 * Most bytes of result JSON one chunk row holds: an item whose result would take its chunk past
 * it fails with `result_too_large`. Keeps a row, and a page of the results stream, bounded
 * (16 KiB per item on average; batch items are meant to be small, large results are jobs).
 */
export const MAX_CHUNK_RESULT_BYTES = 8 * 1024 * 1024;

/**
 * Batch items, stored by chunk (see the BatchChunk model): what workers claim and finish, and
 * what the API reads and cancels item by item. Every statement touches one row per chunk, not
 * one per item.
 */
export class BatchChunkStore {
  private readonly listScanChunks: number;
  private readonly pageChunks: number;

  constructor(
    private readonly pool: pg.Pool,
    options: BatchChunkStoreOptions = {},
  ) {
    this.listScanChunks = options.listScanChunks ?? Math.ceil(LIST_SCAN_ROWS / BATCH_CHUNK_SIZE);
    this.pageChunks = options.pageChunks ?? 4;
  }

  /**
   * Marks the chunk running (its first start) and counts the attempt, and marks its queue entry
   * (whose id is the chunk's) started; returns its items' inputs (null for items already
   * terminal), or null when the chunk is finished or gone (a duplicate or late queue entry) or
   * overdue: not started by its batch's queue deadline, or past the batch's Cancel-After time
   * (see overdue; the chunk is left as it is).
   */
  async claim(id: string): Promise<ClaimedChunk | null> {
    const { rows } = await this.pool.query<Omit<ClaimedChunk, "items"> & { inputs: FlatTensor[][]; statuses: string[] }>(
      `with claimed as (
         update batch_chunks c set "startedAt" = coalesce(c."startedAt", now()), attempts = c.attempts + 1
         from batches b where c.id = $1 and b.id = c."batchId" and c."completedAt" is null
           and (c."startedAt" is not null or b."queueDeadline" is null or b."queueDeadline" > now()) and (b."cancelAt" is null or b."cancelAt" > now())
         returning c.id, c."batchId", b."tenantId", b.model, b.version, b."requestedOutputs", c."firstIndex", c.attempts, c.inputs,
           -- As JSON: JSON.parse reads 512 strings far faster than pg's text[] parser.
           to_json(c.statuses) as statuses, to_json(c."cacheKeys") as "cacheKeys",
           b.trace_parent as "traceParent"),
       started as (update dispatches set "startedAt" = coalesce("startedAt", now()) where id = $1 and exists (select 1 from claimed))
       select * from claimed`,
      [id],
    );
    const row = rows[0];
    if (!row) return null;
    const { inputs, statuses, ...chunk } = row;
    // Items already terminal (canceled, or answered from the cache at creation) are not run.
    return { ...chunk, cacheKeys: chunk.cacheKeys ?? [], items: inputs.map((input, i) => (statuses[i] === "queued" ? input : null)) };
  }

  /**
   * Gives back a claim of the chunk whose run was abandoned, not failed (the worker's shutdown
   * timeout passed): the claim's attempt is taken back, and a chunk on its first attempt (no item
   * written yet: its items are written together) is not started again, nor is its queue entry.
   */
  async releaseClaim(id: string): Promise<void> {
    await this.pool.query(
      `with released as (
         update batch_chunks set attempts = attempts - 1, "startedAt" = case when attempts <= 1 then null else "startedAt" end
         where id = $1 and "completedAt" is null and attempts > 0
         returning "startedAt")
       update dispatches set "startedAt" = null
       where id = $1 and exists (select 1 from released where "startedAt" is null)`,
      [id],
    );
  }

  /**
   * Which deadline a chunk that is not complete has passed, if any: `expire` when it was not
   * started by its batch's queue deadline, `cancel` when its batch is past its Cancel-After time.
   * Null when the chunk is complete or gone. What a claim returned null for comes here.
   */
  async overdue(id: string): Promise<ChunkOverdue | null> {
    const { rows } = await this.pool.query<ChunkOverdue>(
      `select c."batchId", coalesce(c."startedAt" is null and b."queueDeadline" <= now(), false) as expire, coalesce(b."cancelAt" <= now(), false) as cancel
       from batch_chunks c join batches b on b.id = c."batchId" where c.id = $1 and c."completedAt" is null`,
      [id],
    );
    return rows[0] ?? null;
  }

  /**
   * Expires the queued items of chunks not started by their batch's queue deadline, in the
   * caller's transaction: the given chunks (`ids`) or, for the deadline sweep, up to `limit`
   * chunks of any batch past its deadline. Chunks are locked, skipping those another
   * transaction holds (a worker claiming one, another sweep); each expired item gets a
   * `deadline_exceeded` error, each chunk completes (no item is left queued) and forgets its
   * queue entry, and each batch settles its count (in batch id order, so two sweeps never
   * deadlock). `chunks` is how many chunks it took.
   */
  async expire(select: { ids: string[] } | { limit: number }, client: pg.PoolClient): Promise<ExpiredChunks> {
    const rows = await lockUnstartedOverdue(select, client);
    if (rows.length === 0) return { chunks: 0, items: 0, batchIds: [], settlements: [], byModel: [], emptied: [] };
    const updates = rows.map((row) => expiredChunk(row));
    await client.query(
      `update batch_chunks c set statuses = v.statuses, errors = v.errors::json, expired = c.expired + v.n, "completedAt" = now()
       from json_to_recordset($1::json) as v(id uuid, statuses text[], errors text, n int) where c.id = v.id`,
      [JSON.stringify(updates)],
    );
    const chunkIds = rows.map((r) => r.id);
    const emptied = await deleteEntries(client, chunkIds);
    const perBatch = new Map<string, number>();
    rows.forEach((row, i) => perBatch.set(row.batchId, (perBatch.get(row.batchId) ?? 0) + updates[i]!.n));
    const batchIds = [...perBatch.keys()].sort();
    const settlements: BatchSettlement[] = [];
    for (const batchId of batchIds) {
      const settlement = await settleBatch(client, batchId, perBatch.get(batchId)!);
      if (settlement) settlements.push(settlement);
    }
    const perModel = new Map<string, number>();
    rows.forEach((row, i) => perModel.set(row.model, (perModel.get(row.model) ?? 0) + updates[i]!.n));
    const byModel = [...perModel].map(([model, items]) => ({ model, items }));
    return { chunks: rows.length, items: updates.reduce((n, u) => n + u.n, 0), batchIds, settlements, byModel, emptied };
  }

  /**
   * Writes the outcomes of a chunk's items (index-aligned with the claim; undefined where there is
   * none) in the caller's transaction. The row is locked and read first: items that became
   * terminal meanwhile (a cancel) keep their state, so the visible outcome is exactly-once. Also
   * settles the batch's count and forgets the chunk's queue entry.
   */
  async finish(id: string, outcomes: Array<ChunkItemOutcome | undefined>, client: pg.PoolClient): Promise<FinishedChunk | null> {
    const { rows } = await client.query<{ batchId: string; statuses: string[]; results: string | null; errors: string | null }>(
      `select "batchId", statuses, results::text, errors::text from batch_chunks where id = $1 for update`,
      [id],
    );
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
        outcome = { status: "failed", error: { code: "result_too_large", message: `the results of this item's chunk would exceed ${MAX_CHUNK_RESULT_BYTES} bytes; send large results as jobs` } };
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
    return { batchId: row.batchId, finished, succeeded, failed, succeededItems, settlement: await settleBatch(client, row.batchId, finished) };
  }

  /**
   * Cancels one item of the tenant's batch if it is not yet terminal, in the caller's transaction,
   * and takes it off its chunk's queue entry (the entry's row goes with the chunk's last item);
   * null when there is no such item or it was not cancelable.
   */
  async cancelItem(tenantId: string, batchId: string, index: number, client: pg.PoolClient): Promise<CanceledItem | null> {
    const { rows } = await client.query<{ id: string; k: number; status: string | null; size: number; done: number }>(
      `select c.id, $2::int - c."firstIndex" + 1 as k, c.statuses[$2::int - c."firstIndex" + 1] as status, c.size, c.succeeded + c.failed + c.canceled + c.expired as done
       from batch_chunks c join batches b on b.id = c."batchId" and b."tenantId" = $3
       where c."batchId" = $1 and c."firstIndex" <= $2 order by c."firstIndex" desc limit 1 for update of c`,
      [batchId, index, tenantId],
    );
    const chunk = rows[0];
    if (!chunk || chunk.status !== "queued") return null;
    const completes = chunk.done + 1 >= chunk.size;
    await client.query(`update batch_chunks set statuses[$2] = 'canceled', canceled = canceled + 1, "completedAt" = case when $3 then now() else "completedAt" end where id = $1`, [
      chunk.id,
      chunk.k,
      completes,
    ]);
    // The item stops counting in its entry at once (the depth, the quotas, the queue route).
    let emptied: EmptiedEntry[] = [];
    if (completes) emptied = await deleteEntries(client, [chunk.id]);
    else await client.query(`update dispatches set jobs = jobs - 1 where id = $1`, [chunk.id]);
    return { settlement: await settleBatch(client, batchId, 1), emptied };
  }

  /**
   * One item as a job, or null when the batch is not the tenant's or has no such item. Reads only
   * that item's elements of its chunk's arrays: PostgreSQL extracts them, so a chunk of 8 MiB of
   * results costs the API one item's bytes.
   */
  async item(tenantId: string, batchId: string, index: number): Promise<JobView | null> {
    const { rows } = await this.pool.query<ItemRow & ItemBatchRow>(
      `select c."firstIndex", c.size, c."customIds"[k.n] as "customId", c.statuses[k.n] as status,
         coalesce(c.cached[k.n], false) as cached, (c.results -> (k.n - 1))::text as result, (c.errors -> (k.n - 1))::text as error,
         c.attempts, c."startedAt", c."completedAt",
         b.id as "batchId", b.model, b.version, b.priority, b.metadata, b."createdAt", b."canceledAt"
       from batch_chunks c join batches b on b.id = c."batchId"
         cross join lateral (select $3::int - c."firstIndex" + 1 as n) k
       where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" <= $3
       order by c."firstIndex" desc limit 1`,
      [batchId, tenantId, index],
    );
    const row = rows[0];
    if (!row || index >= row.firstIndex + row.size) return null;
    return itemView(oneItemChunk(row, index), row, 0);
  }

  /**
   * A page of a batch's items as jobs, newest (highest index) first, below `beforeIndex`,
   * optionally of one status. Reads the statuses of at most `listScanChunks` chunks below it, then
   * only the page's items' elements of at most `pageChunks` chunks' arrays (PostgreSQL extracts
   * them), so a page of sparse matches reads neither a chunk per item nor whole chunks of
   * results. `nextBefore` is where the next page starts, null when no item is left; a page may
   * hold fewer than `limit` items, even none, while it is not null.
   */
  async listItems(tenantId: string, batchId: string, options: ItemListOptions): Promise<ItemPage> {
    const { rows: scanned } = await this.pool.query<ScannedChunk>(
      `select c."firstIndex", c.size, c.statuses, c."startedAt" from batch_chunks c join batches b on b.id = c."batchId"
       where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" < $3 and ($4::text is null or b.model = $4)
       order by c."firstIndex" desc limit $5`,
      [batchId, tenantId, options.beforeIndex, options.model ?? null, this.listScanChunks],
    );
    const page = pickItems(scanned, options, this.pageChunks);
    // Not ended inside the scan: go on below the lowest chunk read, unless the scan reached index 0.
    const lowest = scanned.length === this.listScanChunks ? scanned[scanned.length - 1]!.firstIndex : 0;
    const nextBefore = page.nextBefore ?? (lowest > 0 ? lowest : null);
    if (page.items.length === 0) return { jobs: [], nextBefore };
    const rows = await this.listedItems(tenantId, batchId, page.items);
    const jobs = rows.flatMap((row) => {
      const view = itemView(oneItemChunk(row, row.firstIndex + row.n - 1), row, 0);
      // Read a moment after the statuses: an item that has moved on since is left out.
      return !options.status || view.status === options.status ? [view] : [];
    });
    return { jobs, nextBefore };
  }

  /** The picked items, highest index first, each with its own elements of its chunk's arrays. */
  private async listedItems(tenantId: string, batchId: string, items: PickedItems["items"]): Promise<ListedItemRow[]> {
    const { rows } = await this.pool.query<ListedItemRow>(
      `with picked as (select * from unnest($3::int[], $4::int[]) as p(first, n))
       select c."firstIndex", x.n, c.size, c."customIds"[x.n] as "customId", c.statuses[x.n] as status,
         coalesce(c.cached[x.n], false) as cached, x.r::text as result, x.e::text as error,
         c.attempts, c."startedAt", c."completedAt",
         b.id as "batchId", b.model, b.version, b.priority, b.metadata, b."createdAt", b."canceledAt"
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
   * A batch's items in submission order, a page at a time: consecutive items of one chunk whose
   * result and error JSON take at most `pageBytes` (a page holds at least one item, however
   * large), so a stream holds one page whatever the chunks hold. PostgreSQL extracts the elements
   * (a chunk of large results is parsed there once per page) and gives each item's result and
   * error as the JSON text stored: the API splices them into its lines without parsing them.
   */
  async *resultPages(batchId: string, pageBytes: number): AsyncGenerator<ResultPage> {
    let from = 0;
    for (;;) {
      const page = await this.resultPage(batchId, from, pageBytes);
      if (!page) return;
      yield page;
      from = page.firstIndex + page.size;
    }
  }

  /** The page of items from index `from` (see resultPages), or null past the last item. */
  private async resultPage(batchId: string, from: number, pageBytes: number): Promise<ResultPage | null> {
    const { rows } = await this.pool.query<ResultItemRow>(
      `with chunk as (
         select "firstIndex", size, "customIds", statuses, cached, "startedAt", results, errors from batch_chunks
         where "batchId" = $1 and "firstIndex" <= $2 order by "firstIndex" desc limit 1),
       items as (
         select c."firstIndex" + x.n - 1 as index, c."customIds"[x.n] as "customId", c.statuses[x.n] as status,
           c."startedAt" is not null as started, coalesce(c.cached[x.n], false) as cached, x.r::text as result, x.e::text as error
         from chunk c cross join lateral
           rows from (generate_series(1, c.size), json_array_elements(c.results), json_array_elements(c.errors)) as x(n, r, e)
         where x.n > $2 - c."firstIndex")
       select "customId", status, started, cached, result, error from (
         select i.*, row_number() over w as k,
           sum(coalesce(octet_length(i.result), 0) + coalesce(octet_length(i.error), 0)) over w as upto
         from items i window w as (order by i.index)) s
       where k = 1 or upto <= $3 order by index`,
      [batchId, from, pageBytes],
    );
    if (rows.length === 0) return null;
    return {
      firstIndex: from,
      size: rows.length,
      customIds: rows.map((r) => r.customId),
      statuses: rows.map((r) => itemStatus(r.status, r.started)),
      cached: rows.map((r) => r.cached),
      results: rows.map((r) => r.result),
      errors: rows.map((r) => r.error),
    };
  }
}

/** An unstarted chunk of a batch past its queue deadline, locked by lockUnstartedOverdue. */
interface OverdueChunkRow {
  id: string;
  batchId: string;
  model: string;
  statuses: string[];
  errors: string | null;
  /** The batch's maxQueueSeconds, for the error message. */
  seconds: number;
}

/**
 * Locks unstarted, incomplete chunks of batches past their queue deadline, skipping those another
 * transaction holds: the given chunks by primary key, or a page found through the batches'
 * partial deadline index.
 */
async function lockUnstartedOverdue(select: { ids: string[] } | { limit: number }, client: pg.PoolClient): Promise<OverdueChunkRow[]> {
  const [which, param] = "ids" in select ? [`and c.id = any($1::uuid[]) order by c.id`, select.ids] : [`order by c.id limit $1`, select.limit];
  const { rows } = await client.query<OverdueChunkRow>(
    `select c.id, c."batchId", b.model, c.statuses, c.errors::text as errors, round(extract(epoch from b."queueDeadline" - b."createdAt"))::int as seconds
     from batch_chunks c join batches b on b.id = c."batchId"
     where b."queueDeadline" <= now() and b."completedAt" is null and c."startedAt" is null and c."completedAt" is null ${which}
     for update of c skip locked`,
    [param],
  );
  return rows;
}

/** A chunk whose queued items expire: its new statuses and errors (as stored), and how many expired. */
function expiredChunk(row: OverdueChunkRow): { id: string; statuses: string[]; errors: string; n: number } {
  const error = JSON.stringify({ code: "deadline_exceeded", message: `not started within its queue deadline of ${row.seconds} s (maxQueueSeconds)` } satisfies JobError);
  const errors = elementTexts(row.errors) ?? row.statuses.map(() => "null");
  let n = 0;
  const statuses = row.statuses.map((status, i) => {
    if (status !== "queued") return status;
    errors[i] = error;
    n++;
    return "expired";
  });
  return { id: row.id, statuses, errors: arrayText(errors), n };
}

/** An item's status: its own once terminal, else its chunk's (running once a worker took it). */
function itemStatus(own: string, started: boolean): JobStatus {
  if (own !== "queued") return own as JobStatus;
  return started ? "running" : "queued";
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

/** One item read with its own elements (ItemRow) as a chunk of that one item at `index`, for itemView. */
function oneItemChunk(row: ItemRow, index: number): SplitChunk {
  return {
    ...row,
    firstIndex: index,
    size: 1,
    customIds: [row.customId],
    statuses: [row.status],
    cached: [row.cached],
    results: [row.result ?? "null"],
    errors: [row.error ?? "null"],
  };
}

/** A chunk row with its result and error arrays split into each item's JSON text. */
type SplitChunk = Omit<ChunkRow, "results" | "errors"> & { results: string[] | null; errors: string[] | null };

function itemView(chunk: SplitChunk, batch: ItemBatchRow, i: number): JobView {
  const status = itemStatus(chunk.statuses[i]!, chunk.startedAt !== null);
  // Answered from the cache when the batch was created: never run, whatever its chunk does since.
  const cached = chunk.cached?.[i] === true;
  const view: JobView = {
    id: batchItemId(batch.batchId, chunk.firstIndex + i),
    status,
    model: batch.model,
    version: batch.version,
    priority: batch.priority,
    createdAt: batch.createdAt.toISOString(),
    attempts: cached ? 0 : chunk.attempts,
    metadata: batch.metadata,
    batchId: batch.batchId,
  };
  if (cached) {
    view.startedAt = view.completedAt = view.createdAt;
  } else {
    if (chunk.startedAt) view.startedAt = chunk.startedAt.toISOString();
    // Items finish with their chunk; one canceled on its own carries the batch's cancel time if any.
    const completedAt = isTerminal(status) ? (chunk.completedAt ?? batch.canceledAt) : null;
    if (completedAt) view.completedAt = completedAt.toISOString();
  }
  const customId = chunk.customIds[i];
  if (customId) view.customId = customId;
  const result = chunk.results?.[i];
  const error = chunk.errors?.[i];
  if (result && result !== "null") view.result = JSON.parse(result) as InferenceResult;
  if (cached) view.cached = true;
  if (error && error !== "null") view.error = JSON.parse(error) as JobError;
  return view;
}

/**
 * A chunk's result and error arrays are written one element per line ("[\n" + elements joined
 * by ",\n" + "\n]"; JSON.stringify never emits a raw newline): still one json value, which a
 * reader splits into each item's JSON text without parsing and re-serialising every result (which
 * would be the API's largest cost when streaming results). Arrays in another layout (the migration's
 * json_agg) are parsed.
 */
function elementTexts(text: string | null): string[] | null {
  if (text === null) return null;
  if (text.startsWith("[\n")) return text.slice(2, -2).split(",\n");
  return (JSON.parse(text) as unknown[]).map((v) => JSON.stringify(v));
}

function arrayText(elements: string[]): string {
  return `[\n${elements.join(",\n")}\n]`;
}
