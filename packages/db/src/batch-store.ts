import type pg from "pg";
import type {
  BatchListPage,
  BatchListQuery,
  BatchStatus,
  BatchView,
  JobStatus,
  WebhookSpec,
} from "@inferline/contracts";
import type { PrismaClient, Batch } from "./generated/prisma/client.ts";
import type { Queryable } from "./database.ts";
import { BatchDraft, DRAFT_IDLE_TIMEOUT_MS, type NewBatch } from "./batch-draft.ts";
import { deleteEntries, type EmptiedEntry } from "./dispatch-store.ts";
import { batchListStatement } from "./batch-listing.ts";
import { encodeCursor, splitPage } from "./bounded-page.ts";
import { LIST_SCAN_ROWS } from "./jobs/listing.ts";

/** What settling a batch's count produced: whether the batch completed with it. */
export interface BatchSettlement {
  batchId: string;
  tenantId: string;
  completed: boolean;
}

/** What canceling a batch did: items it canceled, the batch's settlement, and the queue entries whose rows it deleted. */
export interface CanceledBatch {
  canceled: number;
  model: string;
  settlement: BatchSettlement | null;
  emptied: EmptiedEntry[];
}

export interface BatchStoreOptions {
  /** Idle-in-transaction timeout of a batch being created. Default DRAFT_IDLE_TIMEOUT_MS. */
  draftIdleTimeoutMs?: number;
  /** The most batches one page of `list` reads to check its filters. Default LIST_SCAN_ROWS. */
  listScanRows?: number;
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
  open(batch: NewBatch): Promise<BatchDraft> {
    return BatchDraft.open(this.pool, batch, this.options.draftIdleTimeoutMs ?? DRAFT_IDLE_TIMEOUT_MS);
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
  async eventSubject(
    id: string,
    q: Queryable = this.pool,
  ): Promise<{ tenantId: string; webhook: WebhookSpec | null; view: BatchView } | null> {
    const { rows } = await q.query<Batch>(`select * from batches where id = $1`, [id]);
    const batch = rows[0];
    return batch
      ? { tenantId: batch.tenantId, webhook: batch.webhook as WebhookSpec | null, view: await this.view(batch, q) }
      : null;
  }

  /** The batch with its counts by status, summed over its chunks' counters (a few hundred rows at most). */
  async view(batch: Batch, q: Queryable = this.pool): Promise<BatchView> {
    const { rows } = await q.query<ItemCounts>(`select ${ITEM_COUNTS} from batch_chunks where "batchId" = $1`, [
      batch.id,
    ]);
    return toBatchView(batch, rows[0]!);
  }

  /**
   * A page of the tenant's batches, newest first, with their counts; `nextCursor` continues after
   * it (see batchListStatement). With a filter a page reads at most `listScanRows` batches, so it
   * may hold fewer than `limit` (even none) while `nextCursor` is not null.
   */
  async list(tenantId: string, query: BatchListQuery): Promise<BatchListPage> {
    const { rows } = await this.pool.query<ListedBatch>(
      batchListStatement(tenantId, query, this.options.listScanRows ?? LIST_SCAN_ROWS),
    );
    const { items, end } = splitPage(rows, query.limit);
    const counted = new Map<string, ItemCounts>();
    if (items.length > 0) {
      const { rows: counts } = await this.pool.query<ItemCounts & { batchId: string }>(
        `select "batchId", ${ITEM_COUNTS} from batch_chunks where "batchId" = any($1::uuid[]) group by "batchId"`,
        [items.map((b) => b.id)],
      );
      for (const { batchId, ...c } of counts) counted.set(batchId, c);
    }
    return {
      batches: items.map((b) => toBatchView(b, counted.get(b.id) ?? NO_ITEMS)),
      nextCursor: end ? encodeCursor(end) : null,
    };
  }

  /**
   * Cancels every item not yet terminal, in the caller's transaction: its chunks are locked
   * first, so a worker writing a chunk's results either finished before (its items stay as
   * written) or writes after and keeps the cancel. Returns how many items it canceled and
   * whether the batch completed with them, or null when the batch had completed already (read
   * after those locks, so a worker that completed it a moment ago is seen), with the queue
   * entries whose rows it deleted.
   */
  async cancel(id: string, client: pg.PoolClient): Promise<CanceledBatch | null> {
    // Chunks before the batch row: the order a worker's finish locks them in, so the two never deadlock.
    const { rows } = await client.query<{ id: string; n: number }>(
      `select id, size - succeeded - failed - canceled - expired as n from batch_chunks where "batchId" = $1 and "completedAt" is null order by id for update`,
      [id],
    );
    const { rows: batch } = await client.query<{ completedAt: Date | null; model: string }>(
      `select "completedAt", model from batches where id = $1 for update`,
      [id],
    );
    if (!batch[0] || batch[0].completedAt) return null;
    await client.query(`update batches set "canceledAt" = coalesce("canceledAt", now()) where id = $1`, [id]);
    const model = batch[0].model;
    if (rows.length === 0) return { canceled: 0, model, settlement: null, emptied: [] };
    const ids = rows.map((r) => r.id);
    await client.query(
      `update batch_chunks set canceled = size - succeeded - failed - expired, "completedAt" = now(),
         statuses = array(select case when s = 'queued' then 'canceled' else s end from unnest(statuses) with ordinality as u(s, n) order by n)
       where id = any($1::uuid[])`,
      [ids],
    );
    const emptied = await deleteEntries(client, ids);
    const canceled = rows.reduce((sum, r) => sum + r.n, 0);
    return { canceled, model, settlement: await settleBatch(client, id, canceled), emptied };
  }

  /**
   * Batches past their Cancel-After time and not yet completed, earliest first, up to `limit`
   * (through the partial index on cancelAt of batches not completed): what the deadline sweep
   * cancels, each with cancel().
   */
  async dueForCancel(limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `select id from batches where "cancelAt" <= now() and "completedAt" is null order by "cancelAt" limit $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }
}

/**
 * Counts `n` newly terminal items (succeeded, failed, canceled or expired) against the batch's `remaining`; the batch completes (once,
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

/** The fields of a batch that its view shows. */
type BatchViewFields = Pick<Batch, "id" | "model" | "version" | "priority" | "total" | "remaining" | "createdAt"> &
  Pick<Batch, "completedAt" | "canceledAt">;

/** A row of the list statement: a batch of the page (`hit`), or where the page's scan ended. */
type ListedBatch = BatchViewFields & { hit: boolean };

/** A batch's items by status. */
type ItemCounts = Record<JobStatus, number>;

const NO_ITEMS: ItemCounts = { queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0, expired: 0 };

/** A batch's items by status, summed over its chunks' counters. */
const ITEM_COUNTS = `coalesce(sum(succeeded), 0)::int as succeeded, coalesce(sum(failed), 0)::int as failed, coalesce(sum(canceled), 0)::int as canceled,
  coalesce(sum(expired), 0)::int as expired,
  coalesce(sum(size - succeeded - failed - canceled - expired) filter (where "startedAt" is null), 0)::int as queued,
  coalesce(sum(size - succeeded - failed - canceled - expired) filter (where "startedAt" is not null), 0)::int as running`;

/** The batch as the API shows it. */
function toBatchView(batch: BatchViewFields, counts: ItemCounts): BatchView {
  const { queued, running, succeeded, failed, canceled, expired } = counts;
  const view: BatchView = {
    id: batch.id,
    status: batchStatus(batch, counts),
    model: batch.model,
    version: batch.version,
    priority: batch.priority,
    total: batch.total,
    counts: { queued, running, succeeded, failed, canceled, expired },
    createdAt: batch.createdAt.toISOString(),
  };
  if (batch.completedAt) view.completedAt = batch.completedAt.toISOString();
  if (batch.canceledAt) view.canceledAt = batch.canceledAt.toISOString();
  return view;
}

/** A batch's status; batchListStatement's STATUS tells it the same way in SQL. */
function batchStatus(batch: BatchViewFields, counts: ItemCounts): BatchStatus {
  if (batch.completedAt || batch.remaining <= 0) return batch.canceledAt ? "canceled" : "completed";
  // Items canceled one by one are no progress: the batch is queued until one runs or finishes.
  return counts.running + counts.succeeded + counts.failed === 0 ? "queued" : "running";
}
