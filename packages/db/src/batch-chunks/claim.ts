import type pg from "pg";
import type { FlatTensor } from "@inferline/contracts";

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

/**
 * Marks the chunk running (its first start) and counts the attempt, and marks its queue entry
 * (whose id is the chunk's) started; returns its items' inputs (null for items already
 * terminal), or null when the chunk is finished or gone (a duplicate or late queue entry) or
 * overdue: not started by its batch's queue deadline, or past the batch's Cancel-After time
 * (see chunkOverdue; the chunk is left as it is).
 */
export async function claimChunk(pool: pg.Pool, id: string): Promise<ClaimedChunk | null> {
  const { rows } = await pool.query<Omit<ClaimedChunk, "items"> & { inputs: FlatTensor[][]; statuses: string[] }>(
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
  return {
    ...chunk,
    cacheKeys: chunk.cacheKeys ?? [],
    items: inputs.map((input, i) => (statuses[i] === "queued" ? input : null)),
  };
}

/**
 * Gives back a claim of the chunk whose run was abandoned, not failed (the worker's shutdown
 * timeout passed): the claim's attempt is taken back, and a chunk on its first attempt (no item
 * written yet: its items are written together) is not started again, nor is its queue entry.
 * `started`: the run wrote some items before it stopped (it made way for other work), so the
 * chunk stays started; its queue entry, waiting again, is not.
 */
export async function releaseChunkClaim(pool: pg.Pool, id: string, started = false): Promise<void> {
  await pool.query(
    `with released as (
       update batch_chunks set attempts = attempts - 1, "startedAt" = case when attempts <= 1 and not $2::boolean then null else "startedAt" end
       where id = $1 and "completedAt" is null and attempts > 0
       returning "startedAt")
     update dispatches set "startedAt" = null
     where id = $1 and exists (select 1 from released where "startedAt" is null or $2::boolean)`,
    [id, started],
  );
}
