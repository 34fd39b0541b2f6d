import type pg from "pg";
import { settleBatch, type BatchSettlement } from "../batch-store.ts";
import { deleteEntries, type EmptiedEntry } from "../dispatch-store.ts";

/** What canceling one item did: the batch's settlement, and its chunk's queue entry when the item was its last. */
export interface CanceledItem {
  settlement: BatchSettlement | null;
  emptied: EmptiedEntry[];
}

/**
 * Cancels one item of the tenant's batch if it is not yet terminal, in the caller's transaction,
 * and takes it off its chunk's queue entry (the entry's row goes with the chunk's last item);
 * null when there is no such item or it was not cancelable.
 */
export async function cancelItem(
  client: pg.PoolClient,
  tenantId: string,
  batchId: string,
  index: number,
): Promise<CanceledItem | null> {
  const { rows } = await client.query<{ id: string; k: number; status: string | null; size: number; done: number }>(
    `select c.id, $2::int - c."firstIndex" + 1 as k, c.statuses[$2::int - c."firstIndex" + 1] as status, c.size, c.succeeded + c.failed + c.canceled + c.expired as done
     from batch_chunks c join batches b on b.id = c."batchId" and b."tenantId" = $3
     where c."batchId" = $1 and c."firstIndex" <= $2 order by c."firstIndex" desc limit 1 for update of c`,
    [batchId, index, tenantId],
  );
  const chunk = rows[0];
  if (!chunk || chunk.status !== "queued") return null;
  const completes = chunk.done + 1 >= chunk.size;
  await client.query(
    `update batch_chunks set statuses[$2] = 'canceled', canceled = canceled + 1, "completedAt" = case when $3 then now() else "completedAt" end where id = $1`,
    [chunk.id, chunk.k, completes],
  );
  // The item stops counting in its entry at once (the depth, the quotas, the queue route).
  let emptied: EmptiedEntry[] = [];
  if (completes) emptied = await deleteEntries(client, [chunk.id]);
  else await client.query(`update dispatches set jobs = jobs - 1 where id = $1`, [chunk.id]);
  return { settlement: await settleBatch(client, batchId, 1), emptied };
}
