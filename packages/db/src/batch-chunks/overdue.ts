import type pg from "pg";
import type { JobError } from "@inferline/contracts";
import { settleBatch, type BatchSettlement } from "../batch-store.ts";
import { deleteEntries, type EmptiedEntry } from "../dispatch-store.ts";
import { arrayText, elementTexts } from "./arrays.ts";

/** Which deadline a chunk not yet complete has passed (see chunkOverdue). */
export interface ChunkOverdue {
  batchId: string;
  /** Not started by its batch's queue deadline: its queued items expire. */
  expire: boolean;
  /** Its batch is past its Cancel-After time: the batch is canceled. */
  cancel: boolean;
}

/** What expireChunks did: chunks it took and items it expired, per batch the settlement. */
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

/**
 * Which deadline a chunk that is not complete has passed, if any: `expire` when it was not
 * started by its batch's queue deadline, `cancel` when its batch is past its Cancel-After time.
 * Null when the chunk is complete or gone. What a claim returned null for comes here.
 */
export async function chunkOverdue(pool: pg.Pool, id: string): Promise<ChunkOverdue | null> {
  const { rows } = await pool.query<ChunkOverdue>(
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
export async function expireChunks(
  client: pg.PoolClient,
  select: { ids: string[] } | { limit: number },
): Promise<ExpiredChunks> {
  const rows = await lockUnstartedOverdue(client, select);
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
async function lockUnstartedOverdue(
  client: pg.PoolClient,
  select: { ids: string[] } | { limit: number },
): Promise<OverdueChunkRow[]> {
  const [which, param] =
    "ids" in select
      ? [`and c.id = any($1::uuid[]) order by c.id`, select.ids]
      : [`order by c.id limit $1`, select.limit];
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
  const error = JSON.stringify({
    code: "deadline_exceeded",
    message: `not started within its queue deadline of ${row.seconds} s (maxQueueSeconds)`,
  } satisfies JobError);
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
