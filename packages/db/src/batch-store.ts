import type pg from "pg";
import { InferlineError, type BatchStatus, type BatchView, type FlatTensor, type JobPriority, type JobStatus, type WebhookSpec } from "@inferline/contracts";
import type { PrismaClient, Batch } from "./generated/prisma/client.ts";
import type { Queryable } from "./database.ts";

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
  createdAt: Date;
}

/** Consecutive items of a new batch, stored as one row and carried by one queue entry (whose id is `id`). */
export interface NewBatchChunk {
  id: string;
  firstIndex: number;
  inputs: FlatTensor[][];
  customIds: Array<string | null>;
}

/** What settling a batch's count produced: whether the batch completed with it. */
export interface BatchSettlement {
  batchId: string;
  tenantId: string;
  completed: boolean;
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

export interface BatchStoreOptions {
  /** Idle-in-transaction timeout of a batch being created. Default DRAFT_IDLE_TIMEOUT_MS. */
  draftIdleTimeoutMs?: number;
}

export class BatchStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly prisma: PrismaClient,
    private readonly options: BatchStoreOptions = {},
  ) {}

  /**
   * Opens the transaction a new batch is written in: the batch row now (so that a concurrent
   * create with the same Idempotency-Key waits on its unique index), chunks as they fill, queue
   * entries and totals at commit. Nothing of it is visible before commit.
   */
  async open(batch: NewBatch): Promise<BatchDraft> {
    const idleMs = this.options.draftIdleTimeoutMs ?? DRAFT_IDLE_TIMEOUT_MS;
    const client = await this.pool.connect();
    const draft = new BatchDraft(client, batch, idleMs);
    try {
      await client.query("begin");
      await client.query(`set local idle_in_transaction_session_timeout = ${Math.trunc(idleMs)}`);
      // Its statements carry megabytes of chunks, past the connection's short default bound.
      await client.query(`set local statement_timeout = ${DRAFT_STATEMENT_TIMEOUT_MS}`);
      await client.query(
        `insert into batches (id, "tenantId", model, version, priority, total, remaining, webhook, "requestedOutputs", metadata, "idempotencyKey", "requestHash", "createdAt")
         values ($1, $2, $3, $4, $5::"JobPriority", 0, 0, $6, $7, $8, $9, null, $10)`,
        [batch.id, batch.tenantId, batch.model, batch.version, batch.priority, batch.webhook ? JSON.stringify(batch.webhook) : null, batch.requestedOutputs, JSON.stringify(batch.metadata), batch.idempotencyKey, batch.createdAt],
      );
    } catch (err) {
      await draft.rollback();
      throw err;
    }
    return draft;
  }

  async get(tenantId: string, id: string): Promise<Batch | null> {
    return this.prisma.batch.findFirst({ where: { id, tenantId } });
  }

  async findByIdempotencyKey(tenantId: string, key: string): Promise<Batch | null> {
    return this.prisma.batch.findFirst({ where: { tenantId, idempotencyKey: key } });
  }

  /** Frees an idempotency key older than its retention so that it can be used again. */
  async releaseIdempotencyKey(id: string): Promise<void> {
    await this.prisma.batch.update({ where: { id }, data: { idempotencyKey: null } });
  }

  /** What a `batch.completed` event needs: owner, webhook, and the batch as the API shows it. */
  async eventSubject(id: string, q: Queryable = this.pool): Promise<{ tenantId: string; webhook: WebhookSpec | null; view: BatchView } | null> {
    const { rows } = await q.query<Batch>(`select * from batches where id = $1`, [id]);
    const batch = rows[0];
    return batch ? { tenantId: batch.tenantId, webhook: batch.webhook as WebhookSpec | null, view: await this.view(batch, q) } : null;
  }

  /** The batch with its counts by status, summed over its chunks' counters (a few hundred rows at most). */
  async view(batch: Batch, q: Queryable = this.pool): Promise<BatchView> {
    const { rows } = await q.query<Record<JobStatus, number>>(
      `select coalesce(sum(succeeded), 0)::int as succeeded, coalesce(sum(failed), 0)::int as failed, coalesce(sum(canceled), 0)::int as canceled,
         coalesce(sum(size - succeeded - failed - canceled) filter (where "startedAt" is null), 0)::int as queued,
         coalesce(sum(size - succeeded - failed - canceled) filter (where "startedAt" is not null), 0)::int as running
       from batch_chunks where "batchId" = $1`,
      [batch.id],
    );
    const counts = rows[0]!;
    const view: BatchView = {
      id: batch.id,
      status: batchStatus(batch, counts),
      model: batch.model,
      version: batch.version,
      priority: batch.priority,
      total: batch.total,
      counts: { queued: counts.queued, running: counts.running, succeeded: counts.succeeded, failed: counts.failed, canceled: counts.canceled },
      createdAt: batch.createdAt.toISOString(),
    };
    if (batch.completedAt) view.completedAt = batch.completedAt.toISOString();
    if (batch.canceledAt) view.canceledAt = batch.canceledAt.toISOString();
    return view;
  }

  /**
   * Cancels every item not yet terminal, in the caller's transaction: its chunks are locked
   * first, so a worker writing a chunk's results either finished before (its items stay as
   * written) or writes after and keeps the cancel. Returns how many items it canceled and
   * whether the batch completed with them, or null when the batch had completed already (read
   * after those locks, so a worker that completed it a moment ago is seen).
   */
  async cancel(id: string, client: pg.PoolClient): Promise<{ canceled: number; settlement: BatchSettlement | null } | null> {
    // Chunks before the batch row: the order a worker's finish locks them in, so the two never deadlock.
    const { rows } = await client.query<{ id: string; n: number }>(
      `select id, size - succeeded - failed - canceled as n from batch_chunks where "batchId" = $1 and "completedAt" is null order by id for update`,
      [id],
    );
    const { rows: batch } = await client.query<{ completedAt: Date | null }>(`select "completedAt" from batches where id = $1 for update`, [id]);
    if (!batch[0] || batch[0].completedAt) return null;
    await client.query(`update batches set "canceledAt" = coalesce("canceledAt", now()) where id = $1`, [id]);
    if (rows.length === 0) return { canceled: 0, settlement: null };
    const ids = rows.map((r) => r.id);
    await client.query(
      `update batch_chunks set canceled = size - succeeded - failed, "completedAt" = now(),
         statuses = array(select case when s = 'queued' then 'canceled' else s end from unnest(statuses) with ordinality as u(s, n) order by n)
       where id = any($1::uuid[])`,
      [ids],
    );
    await client.query(`delete from dispatches where id = any($1::uuid[])`, [ids]);
    const canceled = rows.reduce((sum, r) => sum + r.n, 0);
    return { canceled, settlement: await settleBatch(client, id, canceled) };
  }
}

/**
 * Counts `n` newly terminal items against the batch's `remaining`; the batch completes (once,
 * whoever gets it to zero) in the same statement. Run in the transaction that finished the items.
 */
export async function settleBatch(q: Queryable, batchId: string, n: number): Promise<BatchSettlement | null> {
  if (n <= 0) return null;
  const { rows } = await q.query<{ tenantId: string; completed: boolean }>(
    `update batches set remaining = remaining - $2,
       "completedAt" = case when remaining - $2 <= 0 then coalesce("completedAt", now()) else "completedAt" end
     where id = $1 returning "tenantId", remaining <= 0 as completed`,
    [batchId, n],
  );
  const row = rows[0];
  return row ? { batchId, tenantId: row.tenantId, completed: row.completed } : null;
}

function batchStatus(batch: Batch, counts: Record<JobStatus, number>): BatchStatus {
  if (batch.completedAt || batch.remaining <= 0) return batch.canceledAt ? "canceled" : "completed";
  // Items canceled one by one are no progress: the batch is queued until one runs or finishes.
  return counts.running + counts.succeeded + counts.failed === 0 ? "queued" : "running";
}

/** A chunk as it is written: its inputs already serialised, so that the validated objects can go. */
interface EncodedChunk {
  id: string;
  firstIndex: number;
  size: number;
  inputs: string;
  customIds: Array<string | null>;
}

/**
 * A batch being written in one open transaction (see BatchStore.open): chunks are inserted a
 * few per statement as they fill, one statement in flight while the next chunks are read, so an
 * upload holds at most about 2 × INSERT_BYTES of items. Commit adds the queue entries and the
 * totals; anything else (rollback, an error, a lost connection) leaves nothing behind.
 */
export class BatchDraft {
  private pending: EncodedChunk[] = [];
  private pendingBytes = 0;
  private readonly ids: string[] = [];
  private readonly sizes: number[] = [];
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

  /** Adds the next chunk (chunks come in item order); writes the pending ones once there are enough. */
  async add(chunk: NewBatchChunk): Promise<void> {
    this.assertUsable();
    const inputs = JSON.stringify(chunk.inputs);
    this.pending.push({ id: chunk.id, firstIndex: chunk.firstIndex, size: chunk.inputs.length, inputs, customIds: chunk.customIds });
    this.pendingBytes += inputs.length;
    if (this.pending.length >= CHUNKS_PER_INSERT || this.pendingBytes >= INSERT_BYTES) await this.flush();
  }

  /** Writes the rest, the chunks' queue entries and the batch's totals, and commits. */
  async commit(total: number, requestHash: string | null): Promise<void> {
    try {
      await this.flush();
      await this.inflight;
      this.assertUsable();
      await this.client.query(
        `insert into dispatches (id, model, version, priority, jobs, "jobIds", "batchChunk")
         select c.id, $2, $3, $4::"JobPriority", c.size, '{}', true from unnest($1::uuid[], $5::int[]) as c(id, size)`,
        [this.ids, this.batch.model, this.batch.version, this.batch.priority, this.sizes],
      );
      await this.client.query(`update batches set total = $2, remaining = $2, "requestHash" = $3 where id = $1`, [this.batch.id, total, requestHash]);
      await this.client.query("commit");
      this.release();
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
      this.ids.push(c.id);
      this.sizes.push(c.size);
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
    return new InferlineError("upload_stalled", `the request body stopped arriving for more than ${idleMs / 1000} s; nothing was created`, { status: 408 });
  }
  return err;
}

/** One multi-row insert; each chunk's inputs travel as one JSON text parameter (no per-element escaping). */
async function insertChunks(client: pg.PoolClient, batchId: string, chunks: EncodedChunk[]): Promise<void> {
  const params: unknown[] = [batchId];
  const values = chunks.map((c) => {
    const p = params.length;
    params.push(c.id, c.firstIndex, c.size, c.inputs, c.customIds);
    return `($${p + 1}::uuid, $1::uuid, $${p + 2}::int, $${p + 3}::int, $${p + 4}::json, $${p + 5}::text[], array_fill('queued'::text, array[$${p + 3}::int]))`;
  });
  await client.query({
    text: `insert into batch_chunks (id, "batchId", "firstIndex", size, inputs, "customIds", statuses) values ${values.join(", ")}`,
    values: params,
    // The client-side bound follows the draft's statement timeout, not the pool's.
    query_timeout: DRAFT_STATEMENT_TIMEOUT_MS + 1000,
  } as pg.QueryConfig);
}
