import type pg from "pg";
import type { JobPriority } from "@inferline/contracts";

/** A `dispatches` row: a queue entry not yet processed (its jobs, or one batch chunk whose id it shares). */
export interface PendingDispatch {
  id: string;
  jobIds: string[];
  batchChunk: boolean;
  jobs: number;
  model: string;
  version: string;
  priority: JobPriority;
}

/** What is left of a pending entry's work (see DispatchStore.pendingItems). */
export interface PendingItems {
  /** Its jobs not yet terminal; for a batch chunk, the chunk's id while it is unfinished. */
  left: string[];
  /** Whether a worker had started any of them. */
  started: boolean;
}

/**
 * The `dispatches` table as the reconciler and the queue-depth check read it: one row per queue
 * entry not yet processed. Rows are written with the work they carry (JobStore.insertMany,
 * BatchDraft.commit, JobStore.isolate) and deleted with its outcome (JobStore.finish,
 * BatchChunkStore.finish, the cancels), in those statements.
 */
export class DispatchStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Entries of `models` older than `olderThanMs`, oldest first, at most 1000: those whose queue entry may be lost. */
  async pendingEntries(models: string[], olderThanMs: number): Promise<PendingDispatch[]> {
    const { rows } = await this.pool.query<PendingDispatch>(
      `select id, model, version, priority, "jobIds", "batchChunk", jobs from dispatches
       where model = any($1::text[]) and "createdAt" < now() - make_interval(secs => $2::double precision / 1000)
       order by "createdAt" limit 1000`,
      [models, olderThanMs],
    );
    return rows;
  }

  /**
   * The entry's jobs not yet terminal (for a batch chunk, the chunk itself while unfinished), and
   * whether any of them had been started by a worker.
   */
  async pendingItems(entry: Pick<PendingDispatch, "id" | "jobIds" | "batchChunk">): Promise<PendingItems> {
    const { rows } = entry.batchChunk
      ? await this.pool.query<{ id: string; started: boolean }>(`select id, "startedAt" is not null as started from batch_chunks where id = $1 and "completedAt" is null`, [entry.id])
      : await this.pool.query<{ id: string; started: boolean }>(`select id, status = 'running' as started from jobs where id = any($1::uuid[]) and status in ('queued', 'running')`, [entry.jobIds]);
    return { left: rows.map((r) => r.id), started: rows.some((r) => r.started) };
  }

  /** Forgets an entry whose work is all done. */
  async delete(id: string): Promise<void> {
    await this.pool.query(`delete from dispatches where id = $1`, [id]);
  }

  /** Jobs per model in queue entries not yet processed (queued or running): the queue depth. */
  async pendingByModel(model: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`select coalesce(sum(jobs), 0)::int as n from dispatches where model = $1`, [model]);
    return rows[0]?.n ?? 0;
  }
}

/** What the workers' reconciler reads and deletes. */
export type ReconcilerStore = Pick<DispatchStore, "pendingEntries" | "pendingItems" | "delete">;

/** What the API's MAX_QUEUE_DEPTH check reads. */
export type QueueDepthStore = Pick<DispatchStore, "pendingByModel">;
