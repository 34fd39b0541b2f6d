import crypto from "node:crypto";
import type { JobPriority } from "@inferline/contracts";
import type { Queryable } from "../database.ts";

/** A job moved onto a queue entry of its own (see isolateJobs). */
export interface IsolatedJob {
  jobId: string;
  dispatchId: string;
  model: string;
  version: string;
  priority: JobPriority;
}

/**
 * Moves jobs of a queue entry onto entries of their own, one job each (a suspect of a crashed
 * worker, or a job whose run timed out, must not take the rest of its entry down with it
 * again): new dispatch rows, the jobs' dispatchId, and, with `removeEntry`, the old entry's
 * row. Jobs already terminal are left alone. The caller adds the queue entries; should that
 * fail, the reconciler finds the rows.
 *
 * A job's new entry id derives from the old entry's and its own (isolationEntryId), so isolating
 * the same entry again (its worker died after this committed, before the entries were added)
 * makes the same rows and entries, not a second set whose first would be left behind, counted
 * in the tenant's queue with no entry to ever run and delete it.
 */
export async function isolateJobs(
  q: Queryable,
  entryId: string,
  jobIds: string[],
  removeEntry: boolean,
): Promise<IsolatedJob[]> {
  if (jobIds.length === 0) return [];
  const { rows } = await q.query<IsolatedJob>(
    `with moved as (
       update jobs j set "dispatchId" = x.dispatch
       from unnest($2::uuid[], $3::uuid[]) as x(job, dispatch)
       where j.id = x.job and j.status in ('queued', 'running')
       returning j.id, x.dispatch, j.model, j.version, j.priority, j."tenantId"),
     added as (
       insert into dispatches (id, model, version, priority, jobs, "jobIds", "tenantId")
       select dispatch, model, version, priority, 1, array[id], "tenantId" from moved
       on conflict (id) do nothing),
     gone as (delete from dispatches where id = $1 and $4::boolean)
     select id as "jobId", dispatch as "dispatchId", model, version, priority from moved`,
    [entryId, jobIds, jobIds.map((jobId) => isolationEntryId(entryId, jobId)), removeEntry],
  );
  return rows;
}

/**
 * The id of the entry isolateJobs moves `jobId` of `entryId` onto: a name-based UUID
 * (RFC 9562 version 5 layout over SHA-1 of both ids), the same each time for the same pair.
 */
function isolationEntryId(entryId: string, jobId: string): string {
  const b = crypto.createHash("sha1").update(`${entryId}/${jobId}`).digest();
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex", 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
