import type { Queryable } from "../database.ts";
import { endedColumns, type FinishedJob } from "./finished.ts";

const CANCEL_TEXT = `update jobs set status = 'canceled', "completedAt" = now(), "queueDeadline" = null, "cancelAt" = null
   where id = $1 and "tenantId" = $2 and status in ('queued', 'running')
   returning ${endedColumns()}`;

/** Cancels a queued or running job of the tenant (its deadlines no longer apply). Returns it, or undefined when it was not cancelable. */
export async function cancelJob(q: Queryable, tenantId: string, id: string): Promise<FinishedJob | undefined> {
  const { rows } = await q.query<FinishedJob>(CANCEL_TEXT, [id, tenantId]);
  return rows[0];
}
