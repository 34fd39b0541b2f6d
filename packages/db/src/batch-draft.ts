import type pg from "pg";
import { InferlineError, type FlatTensor, type JobPriority, type WebhookSpec } from "@inferline/contracts";
import type { Queryable } from "./database.ts";

/** A batch's row as BatchStore.open writes it (its totals come at commit). */
export interface NewBatch {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  priority: JobPriority;
  webhook: WebhookSpec | null;
  requestedOutputs: string[];
  metadata: Record<string, string>;
  idempotencyKey: string | null;
  /** Items not started by then expire (maxQueueSeconds). */
  queueDeadline: Date | null;
  /** Items not terminal by then are canceled (Cancel-After). */
  cancelAt: Date | null;
  createdAt: Date;
  /** The W3C traceparent of the create request's span (OpenTelemetry), which the workers' chunk spans continue; absent or null when not traced. */
  traceParent?: string | null;
}

/** Consecutive items of a new batch, stored as one row and carried by one queue entry (whose id is `id`). */
export interface NewBatchChunk {
  id: string;
  firstIndex: number;
  inputs: FlatTensor[][];
  customIds: Array<string | null>;
  /** Each item's result-cache digest (index-aligned), for a model with a cache; the worker stores results under it. */
  cacheKeys?: string[];
  /**
   * Each item's result found in the cache, as JSON text (index-aligned; null for a miss): such an
   * item is stored already succeeded and marked cached, and is never run. A chunk whose items are
   * all hits is complete at once and gets no queue entry.
   */
  hits?: Array<string | null>;
}

/** What a committed batch needs queued: its chunks that have items to run, with their fair-share ranks. */
export interface CommittedDraft<E> {
  /** Chunks with items to run (a chunk answered whole from the cache has no queue entry), in chunk order. */
  chunkIds: string[];
  /** Each of those chunks' fair-share rank (see commit). */
  ranks: number[];
  /** Items queued: the batch's total less its cache hits. */
  queued: number;
  /** Every item was a cache hit: the batch completed with its creation. */
  completed: boolean;
  /** What `onCompleted` recorded in the transaction (its `batch.completed` event). */
  recorded: E[];
}

/** Chunks per insert statement; each carries its inputs as one JSON parameter. */
const CHUNKS_PER_INSERT = 16;
/** Bound on one statement of a batch upload's transaction (set for the transaction alone). */
const DRAFT_STATEMENT_TIMEOUT_MS = 30_000;
/** Fewer chunks per statement once their inputs' JSON reaches this size: what an upload holds unwritten. */
const INSERT_BYTES = 4 * 1024 * 1024;
/**
 * A batch being created keeps its transaction open while its body streams in; PostgreSQL ends
 * the session (and so the transaction, and the pooled connection it holds) of an upload whose
 * client stops sending for this long between two of its statements.
 */
export const DRAFT_IDLE_TIMEOUT_MS = 30_000;

/** A chunk as it is written: its inputs already serialised, so that the validated objects can go. */
interface EncodedChunk {
  id: string;
  firstIndex: number;
  size: number;
  inputs: string;
  customIds: Array<string | null>;
  cacheKeys: string[];
  /** Set only when some item was a cache hit: its statuses, results (as stored) and cached markers. */
  hits: { statuses: string[]; results: string; cached: boolean[]; n: number } | null;
}

/**
 * A batch being written in one open transaction (see BatchStore.open): chunks are inserted a
 * few per statement as they fill, one statement in flight while the next chunks are read, so an
 * upload holds at most about 2 × INSERT_BYTES of items. Commit adds the queue entries and the
 * totals; anything else (rollback, an error, a lost connection) leaves nothing behind. It holds
 * its own client rather than run in Database.transaction: the transaction outlives any one
 * callback, spanning the reads of a streamed body.
 */
export class BatchDraft {
  private pending: EncodedChunk[] = [];
  private pendingBytes = 0;
  /** Chunks with items to run and how many each has: their queue entries. */
  private readonly ids: string[] = [];
  private readonly sizes: number[] = [];
  private hitCount = 0;
  private inflight: Promise<void> | undefined;
  private failure: Error | undefined;
  private released = false;
  /** A checked-out client has no pool listener: without this, a killed session would crash the process. */
  private readonly onError = (err: Error) => {
    this.failure ??= err;
    this.release(err);
  };

  constructor(
    private readonly client: pg.PoolClient,
    readonly batch: NewBatch,
    private readonly idleMs = DRAFT_IDLE_TIMEOUT_MS,
  ) {
    client.on("error", this.onError);
  }

  /**
   * Begins the transaction on a client of `pool` and inserts the batch row (so that a concurrent
   * create with the same Idempotency-Key waits on its unique index).
   */
  static async open(pool: pg.Pool, batch: NewBatch, idleMs: number): Promise<BatchDraft> {
    const client = await pool.connect();
    const draft = new BatchDraft(client, batch, idleMs);
    try {
      await client.query("begin");
      await client.query(`set local idle_in_transaction_session_timeout = ${Math.trunc(idleMs)}`);
      // Its statements carry megabytes of chunks, past the connection's short default bound.
      await client.query(`set local statement_timeout = ${DRAFT_STATEMENT_TIMEOUT_MS}`);
      await client.query(
        `insert into batches (id, "tenantId", model, version, priority, total, remaining, webhook, "requestedOutputs", metadata, "idempotencyKey", "requestHash", "queueDeadline", "cancelAt", "createdAt", trace_parent)
         values ($1, $2, $3, $4, $5::"JobPriority", 0, 0, $6, $7, $8, $9, null, $11, $12, $10, $13)`,
        [
          batch.id,
          batch.tenantId,
          batch.model,
          batch.version,
          batch.priority,
          batch.webhook ? JSON.stringify(batch.webhook) : null,
          batch.requestedOutputs,
          JSON.stringify(batch.metadata),
          batch.idempotencyKey,
          batch.createdAt,
          batch.queueDeadline,
          batch.cancelAt,
          batch.traceParent ?? null,
        ],
      );
    } catch (err) {
      await draft.rollback();
      throw err;
    }
    return draft;
  }

  /** Adds the next chunk (chunks come in item order); writes the pending ones once there are enough. */
  async add(chunk: NewBatchChunk): Promise<void> {
    this.assertUsable();
    const inputs = JSON.stringify(chunk.inputs);
    const hits = encodeHits(chunk.hits);
    this.pending.push({
      id: chunk.id,
      firstIndex: chunk.firstIndex,
      size: chunk.inputs.length,
      inputs,
      customIds: chunk.customIds,
      cacheKeys: chunk.cacheKeys ?? [],
      hits,
    });
    this.pendingBytes += inputs.length + (hits?.results.length ?? 0);
    if (this.pending.length >= CHUNKS_PER_INSERT || this.pendingBytes >= INSERT_BYTES) await this.flush();
  }

  /**
   * Writes the rest, the queue entries of the chunks with items to run and the batch's totals
   * (`remaining` less the cache hits; a batch whose items were all hits completes here, and
   * `onCompleted` records its `batch.completed` event in this transaction), and commits. Returns
   * each queued chunk's fair-share rank, in chunk order (see JobStore.insertMany): the tenant's
   * queued work of the model and priority before the batch, plus the batch's earlier chunks.
   */
  async commit<E = never>(
    total: number,
    requestHash: string | null,
    onCompleted?: (q: Queryable) => Promise<E[]>,
  ): Promise<CommittedDraft<E>> {
    try {
      await this.flush();
      await this.inflight;
      this.assertUsable();
      const queued = total - this.hitCount;
      // The select sees dispatches as they were before the statement's own insert.
      const { rows } = await this.client.query<{ queued: number }>(
        `with d as (
           insert into dispatches (id, model, version, priority, jobs, "jobIds", "batchChunk", "tenantId")
           select c.id, $2, $3, $4::"JobPriority", c.size, '{}', true, $6 from unnest($1::uuid[], $5::int[]) as c(id, size))
         select coalesce(sum(jobs), 0)::int as queued from dispatches
         where model = $2 and "tenantId" = $6 and priority = $4::"JobPriority" and "startedAt" is null`,
        [this.ids, this.batch.model, this.batch.version, this.batch.priority, this.sizes, this.batch.tenantId],
      );
      await this.client.query(
        `update batches set total = $2, remaining = $3, "requestHash" = $4, "completedAt" = case when $3::int <= 0 then now() end where id = $1`,
        [this.batch.id, total, queued, requestHash],
      );
      const completed = queued <= 0;
      const recorded = completed && onCompleted ? await onCompleted(this.client) : [];
      await this.client.query("commit");
      this.release();
      let rank = rows[0]?.queued ?? 0;
      return {
        chunkIds: [...this.ids],
        ranks: this.sizes.map((size) => (rank += size) - size),
        queued,
        completed,
        recorded,
      };
    } catch (err) {
      await this.rollback();
      throw this.failure ? connectionLost(this.failure, this.idleMs) : err;
    }
  }

  /** Ends the transaction without a trace; safe to call more than once, and after commit. */
  async rollback(): Promise<void> {
    if (this.released) return;
    await this.inflight?.catch(() => {});
    if (this.released) return; // the connection died meanwhile
    await this.client.query("rollback").catch((err: Error) => (this.failure ??= err));
    this.release(this.failure);
  }

  /** Starts inserting the pending chunks once the previous insert has finished (its error surfaces here). */
  private async flush(): Promise<void> {
    await this.inflight;
    this.inflight = undefined;
    if (this.pending.length === 0) return;
    this.assertUsable();
    const chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const c of chunks) {
      const hits = c.hits?.n ?? 0;
      this.hitCount += hits;
      if (hits === c.size) continue; // answered whole from the cache: nothing to queue
      this.ids.push(c.id);
      this.sizes.push(c.size - hits);
    }
    const insert = insertChunks(this.client, this.batch.id, chunks);
    insert.catch(() => {}); // awaited by the next flush, commit or rollback
    this.inflight = insert;
  }

  private assertUsable(): void {
    if (this.failure) throw connectionLost(this.failure, this.idleMs);
    if (this.released) throw new Error("this batch draft is already committed or rolled back");
  }

  /** Returns the client to the pool, or (after an error) has the pool discard it. */
  private release(err?: Error): void {
    if (this.released) return;
    this.released = true;
    if (!err) this.client.off("error", this.onError);
    else this.client.on("error", () => {}); // late errors of a discarded client
    this.client.release(err);
  }
}

/** What a draft whose session ended reports: PostgreSQL's idle-in-transaction timeout is the client's stall. */
function connectionLost(err: Error, idleMs: number): Error {
  if ((err as { code?: string }).code === "25P03") {
    return new InferlineError(
      "upload_stalled",
      `the request body stopped arriving for more than ${idleMs / 1000} s; nothing was created`,
      { status: 408 },
    );
  }
  return err;
}

/**
 * A chunk's cache hits as stored: hit items `succeeded` with their cached result (in the
 * element-per-line layout BatchChunkStore reads) and marked cached; null when there is none.
 */
function encodeHits(hits: Array<string | null> | undefined): EncodedChunk["hits"] {
  if (!hits?.some((h) => h !== null)) return null;
  let n = 0;
  const statuses = hits.map((h) => (h === null ? "queued" : (n++, "succeeded")));
  return {
    statuses,
    results: `[\n${hits.map((h) => h ?? "null").join(",\n")}\n]`,
    cached: hits.map((h) => h !== null),
    n,
  };
}

/** One multi-row insert; each chunk's inputs travel as one JSON text parameter (no per-element escaping). */
async function insertChunks(client: pg.PoolClient, batchId: string, chunks: EncodedChunk[]): Promise<void> {
  const params: unknown[] = [batchId];
  const values = chunks.map((c) => {
    const p = params.length;
    params.push(c.id, c.firstIndex, c.size, c.inputs, c.customIds, c.cacheKeys);
    const row = `$${p + 1}::uuid, $1::uuid, $${p + 2}::int, $${p + 3}::int, $${p + 4}::json, $${p + 5}::text[], $${p + 6}::text[]`;
    if (!c.hits)
      return `(${row}, array_fill('queued'::text, array[$${p + 3}::int]), '{}'::boolean[], null::json, 0, null::timestamptz)`;
    const q = params.length;
    params.push(c.hits.statuses, c.hits.cached, c.hits.results, c.hits.n);
    // A chunk answered whole from the cache is complete at once.
    return `(${row}, $${q + 1}::text[], $${q + 2}::boolean[], $${q + 3}::json, $${q + 4}::int, case when $${q + 4}::int = $${p + 3}::int then now() end)`;
  });
  await client.query({
    text: `insert into batch_chunks (id, "batchId", "firstIndex", size, inputs, "customIds", "cacheKeys", statuses, cached, results, succeeded, "completedAt") values ${values.join(", ")}`,
    values: params,
    // The client-side bound follows the draft's statement timeout, not the pool's.
    query_timeout: DRAFT_STATEMENT_TIMEOUT_MS + 1000,
  } as pg.QueryConfig);
}
