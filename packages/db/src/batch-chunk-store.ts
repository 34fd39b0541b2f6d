import type pg from "pg";
import { BATCH_CHUNK_SIZE, batchItemId, isTerminal } from "@inferline/contracts";
import type { FlatTensor, InferenceResult, JobError, JobPriority, JobStatus, JobView } from "@inferline/contracts";
import { settleBatch, type BatchSettlement } from "./batch-store.ts";
import { LIST_SCAN_ROWS } from "./job-listing.ts";

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

/** A chunk as the results stream reads it (see BatchChunkStore.resultPages). */
export interface ResultChunk {
  firstIndex: number;
  size: number;
  customIds: Array<string | null>;
  /** Each item's status as the API shows it: its own once terminal, else its chunk's. */
  statuses: JobStatus[];
  /** Which items were answered from the result cache (empty: none). */
  cached: boolean[];
  /** Each item's result and error as stored JSON text ("null" for none); null when the chunk has none at all. */
  results: string[] | null;
  errors: string[] | null;
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

/** The columns of a chunk and of its batch that its items' job views show (aliases c and b). */
const ITEM_COLUMNS = `c."firstIndex", c.size, c."customIds", c.statuses, c.cached,
  c.results::text as results, c.errors::text as errors, c.attempts, c."startedAt", c."completedAt",
  b.id as "batchId", b.model, b.version, b.priority, b.metadata, b."createdAt", b."canceledAt"`;

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
  /** Chunks whose items one page of listItems shows at most (their results are read whole). Default 4. */
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

/** Chunks per page of a results stream (up to ~5,000 items). */
const RESULT_PAGE_CHUNKS = 10;

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
    if (rows.length === 0) return { chunks: 0, items: 0, batchIds: [], settlements: [], byModel: [] };
    const updates = rows.map((row) => expiredChunk(row));
    await client.query(
      `update batch_chunks c set statuses = v.statuses, errors = v.errors::json, expired = c.expired + v.n, "completedAt" = now()
       from json_to_recordset($1::json) as v(id uuid, statuses text[], errors text, n int) where c.id = v.id`,
      [JSON.stringify(updates)],
    );
    await client.query(`delete from dispatches where id = any($1::uuid[])`, [rows.map((r) => r.id)]);
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
    return { chunks: rows.length, items: updates.reduce((n, u) => n + u.n, 0), batchIds, settlements, byModel };
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
   * Cancels one item of the tenant's batch if it is not yet terminal, in the caller's transaction;
   * null when there is no such item or it was not cancelable.
   */
  async cancelItem(tenantId: string, batchId: string, index: number, client: pg.PoolClient): Promise<{ settlement: BatchSettlement | null } | null> {
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
    if (completes) await client.query(`delete from dispatches where id = $1`, [chunk.id]);
    return { settlement: await settleBatch(client, batchId, 1) };
  }

  /** One item as a job, or null when the batch is not the tenant's or has no such item. */
  async item(tenantId: string, batchId: string, index: number): Promise<JobView | null> {
    const row = await this.chunkBelow(tenantId, batchId, index + 1);
    return row && index < row.firstIndex + row.size ? itemView(split(row), row, index - row.firstIndex) : null;
  }

  /**
   * A page of a batch's items as jobs, newest (highest index) first, below `beforeIndex`,
   * optionally of one status. Reads the statuses of at most `listScanChunks` chunks below it, then
   * the results of the chunks that hold the page's items, at most `pageChunks` of them: an item's
   * result is read with its chunk's (up to MAX_CHUNK_RESULT_BYTES), so a page of sparse matches
   * would otherwise read a chunk per item. `nextBefore` is where the next page starts, null when
   * no item is left; a page may hold fewer than `limit` items, even none, while it is not null.
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
    const chunks = await this.chunksAt(tenantId, batchId, [...new Set(page.items.map((item) => item.firstIndex))]);
    const jobs = page.items.flatMap(({ firstIndex, i }) => {
      const chunk = chunks.get(firstIndex);
      const view = chunk && itemView(chunk, chunk, i);
      // Read a moment after the statuses: an item that has moved on since is left out.
      return view && (!options.status || view.status === options.status) ? [view] : [];
    });
    return { jobs, nextBefore };
  }

  /** The tenant's chunks of the batch that start at `firstIndexes`, whole, with what their items' views show of the batch. */
  private async chunksAt(tenantId: string, batchId: string, firstIndexes: number[]): Promise<Map<number, ItemChunk>> {
    const { rows } = await this.pool.query<ChunkRow & ItemBatchRow>(
      `select ${ITEM_COLUMNS} from batch_chunks c join batches b on b.id = c."batchId"
       where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" = any($3::int[])`,
      [batchId, tenantId, firstIndexes],
    );
    return new Map(rows.map((row) => [row.firstIndex, split(row)]));
  }

  /** The tenant's chunk holding the items just below index `below`, with what an item's job view shows of its batch. */
  private async chunkBelow(tenantId: string, batchId: string, below: number): Promise<(ChunkRow & ItemBatchRow) | undefined> {
    const { rows } = await this.pool.query<ChunkRow & ItemBatchRow>(
      `select ${ITEM_COLUMNS} from batch_chunks c join batches b on b.id = c."batchId"
       where c."batchId" = $1 and b."tenantId" = $2 and c."firstIndex" < $3
       order by c."firstIndex" desc limit 1`,
      [batchId, tenantId, below],
    );
    return rows[0];
  }

  /**
   * A batch's chunks in submission order, a page of them at a time (so a 100,000-item batch
   * streams in flat memory), with each item's status and its result and error as the JSON text
   * they are stored as: the API splices them into its lines without parsing them.
   */
  async *resultPages(batchId: string): AsyncGenerator<ResultChunk[]> {
    let after = -1;
    for (;;) {
      const { rows } = await this.pool.query<ChunkRow>(
        `select "firstIndex", size, "customIds", statuses, cached, results::text as results, errors::text as errors, "startedAt" from batch_chunks
         where "batchId" = $1 and "firstIndex" > $2 order by "firstIndex" limit $3`,
        [batchId, after, RESULT_PAGE_CHUNKS],
      );
      if (rows.length === 0) return;
      yield rows.map(resultChunk);
      after = rows[rows.length - 1]!.firstIndex;
    }
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
      if (options.status && itemStatus(chunk, i) !== options.status) continue;
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

function resultChunk(row: ChunkRow): ResultChunk {
  const statuses = Array.from({ length: row.size }, (_, i) => itemStatus(row, i));
  return { firstIndex: row.firstIndex, size: row.size, customIds: row.customIds, statuses, cached: row.cached ?? [], results: elementTexts(row.results), errors: elementTexts(row.errors) };
}

/** An item's status: its own once terminal, else its chunk's (running once a worker took it). */
function itemStatus(row: Pick<ChunkRow, "statuses" | "startedAt">, i: number): JobStatus {
  const own = row.statuses[i] as JobStatus;
  if (own !== "queued") return own;
  return row.startedAt ? "running" : "queued";
}

/** A chunk row with its result and error arrays split into each item's JSON text. */
type SplitChunk<Row extends ChunkRow = ChunkRow> = Omit<Row, "results" | "errors"> & {
  results: string[] | null;
  errors: string[] | null;
};

/** A chunk as a page of items reads it: whole, with what its items' views show of the batch. */
type ItemChunk = SplitChunk<ChunkRow & ItemBatchRow>;

function split<Row extends ChunkRow>(row: Row): SplitChunk<Row> {
  return { ...row, results: elementTexts(row.results), errors: elementTexts(row.errors) };
}

function itemView(chunk: SplitChunk, batch: ItemBatchRow, i: number): JobView {
  const status = itemStatus(chunk, i);
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
 * reader splits into each item's JSON text without parsing and re-serialising every result (that
 * was the API's largest cost streaming results). Arrays in another layout (the migration's
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
