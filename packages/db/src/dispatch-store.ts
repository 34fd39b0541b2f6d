import type pg from "pg";
import type { JobPriority } from "@inferline/contracts";
import type { Queryable } from "./database.ts";

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

/** An entry whose work all ended before it was processed (see DispatchStore.takeOff): its row is gone. */
export interface EmptiedEntry {
  id: string;
  model: string;
  version: string;
  /** No worker had taken it: its queue entry still waits, and may be removed from the queue. */
  waiting: boolean;
}

/** What a statement deleting `dispatches` rows returns of each, as an EmptiedEntry. */
const EMPTIED_COLUMNS = `id, model, version, "startedAt" is null as waiting`;

/** Deletes the rows of entries whose work is all done or ended, in the caller's transaction; returns them. */
export async function deleteEntries(q: Queryable, ids: string[]): Promise<EmptiedEntry[]> {
  const { rows } = await q.query<EmptiedEntry>(
    `delete from dispatches where id = any($1::uuid[]) returning ${EMPTIED_COLUMNS}`,
    [ids],
  );
  return rows;
}

/** A tenant's work of one model and priority class: what the fair-share rank of its next queue entry counts. */
export interface QueueClass {
  tenantId: string;
  model: string;
  priority: JobPriority;
}

/** A tenant's jobs and batch items of one model in entries not yet processed: not started yet, and started. */
export interface TenantQueue {
  queued: number;
  running: number;
}

/** A model's jobs and batch items in entries not yet processed, and the age of its oldest entry not started (null: none). */
export interface ModelQueue {
  depth: number;
  oldestQueuedAgeSeconds: number | null;
}

/** One model's line of DispatchStore.queues: its work not started yet (single jobs and batch items apart), started, and its oldest waiting entry's age. */
export interface ModelQueueLine {
  model: string;
  queuedJobs: number;
  queuedItems: number;
  /** Jobs and batch items in entries a worker has taken and not yet finished. */
  running: number;
  oldestQueuedAgeSeconds: number | null;
}

/**
 * The `dispatches` table as the reconciler, the queue-depth and quota checks and the queue
 * status route read it: one row per queue entry not yet processed, carrying one tenant's work
 * (`startedAt` null while no worker has taken it). Rows are written with the work they carry
 * (JobStore.insertMany, BatchDraft.commit, which also reads its chunks' fair-share rank, and
 * JobStore.isolate) and deleted with its outcome (JobStore.finish, BatchChunkStore.finish, the
 * cancels), in those statements. Work that ends without a run (a cancel, an expiry) comes off
 * its row at once (takeOff, BatchChunkStore.cancelItem), so `jobs` counts what is still to run
 * in an entry no worker has taken.
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
      ? await this.pool.query<{ id: string; started: boolean }>(
          `select id, "startedAt" is not null as started from batch_chunks where id = $1 and "completedAt" is null`,
          [entry.id],
        )
      : await this.pool.query<{ id: string; started: boolean }>(
          `select id, status = 'running' as started from jobs where id = any($1::uuid[]) and status in ('queued', 'running')`,
          [entry.jobIds],
        );
    return { left: rows.map((r) => r.id), started: rows.some((r) => r.started) };
  }

  /**
   * Takes jobs that ended without a run's outcome (canceled, expired) off their entries' rows,
   * in the caller's transaction, so that they stop counting at once in the depth, the quotas,
   * the queue route and the gauges, rather than when a worker processes the entry (never, for a
   * model no worker serves). `dispatchIds` holds each ended job's entry (null: none, such as a
   * single-flight follower); a row left with no job is deleted, and returned so that its queue
   * entry can be removed. A row's count only falls when its job ends, which happens once.
   * Rows are locked in id order (two sweeps' pages never deadlock), and decremented before
   * emptied rows are deleted in a statement of their own, whose snapshot sees every decrement.
   */
  async takeOff(dispatchIds: Array<string | null | undefined>, q: Queryable = this.pool): Promise<EmptiedEntry[]> {
    const ids = dispatchIds.filter((id): id is string => typeof id === "string");
    if (ids.length === 0) return [];
    const { rows } = await q.query<{ id: string; jobs: number }>(
      `with n as (select id, count(*)::int as n from unnest($1::uuid[]) as u(id) group by id),
       locked as materialized (
         select d.id from dispatches d join n on n.id = d.id where not d."batchChunk" order by d.id for update of d)
       update dispatches d set jobs = d.jobs - n.n from n, locked where d.id = n.id and locked.id = d.id
       returning d.id, d.jobs`,
      [ids],
    );
    const emptied = rows.filter((r) => r.jobs <= 0).map((r) => r.id);
    if (emptied.length === 0) return [];
    const { rows: gone } = await q.query<EmptiedEntry>(
      `delete from dispatches where id = any($1::uuid[]) and jobs <= 0
       returning ${EMPTIED_COLUMNS}`,
      [emptied],
    );
    return gone;
  }

  /** Forgets an entry whose work is all done. */
  async delete(id: string): Promise<void> {
    await this.pool.query(`delete from dispatches where id = $1`, [id]);
  }

  /** Jobs per model in queue entries not yet processed (queued or running): the queue depth. */
  async pendingByModel(model: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `select coalesce(sum(jobs), 0)::int as n from dispatches where model = $1`,
      [model],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Jobs and batch items not started yet of each tenant, model and priority class asked for, in
   * the order asked, in one statement; entries named in `leaveOut` are not counted (the API reads
   * this about once a second per class to rank new queue entries, while it inserts them; see
   * SubmitWriter).
   */
  async queuedByClass(classes: QueueClass[], leaveOut: string[] = []): Promise<number[]> {
    if (classes.length === 0) return [];
    const { rows } = await this.pool.query<{ n: number }>(
      `select coalesce(sum(d.jobs), 0)::int as n
       from unnest($1::uuid[], $2::text[], $3::"JobPriority"[]) with ordinality as k("tenantId", model, priority, i)
       left join dispatches d on d."tenantId" = k."tenantId" and d.model = k.model and d.priority = k.priority and d."startedAt" is null
         and d.id <> all($4::uuid[])
       group by k.i order by k.i`,
      [classes.map((c) => c.tenantId), classes.map((c) => c.model), classes.map((c) => c.priority), leaveOut],
    );
    return rows.map((r) => r.n);
  }

  /** Whose work the entry `id` carries (a worker enforcing caps on an entry that does not say); null when its row is gone or has no tenant. */
  async tenantOf(id: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ tenantId: string | null }>(
      `select "tenantId"::text as "tenantId" from dispatches where id = $1`,
      [id],
    );
    return rows[0]?.tenantId ?? null;
  }

  /** The tenant's jobs and batch items not started yet, over every model: what its quota (maxQueued) counts. */
  async queuedByTenant(tenantId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `select coalesce(sum(jobs), 0)::int as n from dispatches where "tenantId" = $1 and "startedAt" is null`,
      [tenantId],
    );
    return rows[0]?.n ?? 0;
  }

  /** The tenant's work on one model: queued (not started) and running. */
  async tenantQueue(model: string, tenantId: string): Promise<TenantQueue> {
    const { rows } = await this.pool.query<TenantQueue>(
      `select coalesce(sum(jobs) filter (where "startedAt" is null), 0)::int as queued, coalesce(sum(jobs) filter (where "startedAt" is not null), 0)::int as running
       from dispatches where model = $1 and "tenantId" = $2`,
      [model, tenantId],
    );
    return rows[0] ?? { queued: 0, running: 0 };
  }

  /** The model's depth (queued and running, as MAX_QUEUE_DEPTH counts it) and how long its oldest entry not started has waited. */
  async modelQueue(model: string): Promise<ModelQueue> {
    const { rows } = await this.pool.query<ModelQueue>(
      `select coalesce(sum(jobs), 0)::int as depth,
         extract(epoch from now() - min("createdAt") filter (where "startedAt" is null))::float8 as "oldestQueuedAgeSeconds"
       from dispatches where model = $1`,
      [model],
    );
    return rows[0] ?? { depth: 0, oldestQueuedAgeSeconds: null };
  }

  /**
   * Every model's queue at once, in one statement over the whole table (one row per entry not
   * yet processed, so a few thousand rows even behind a 100,000-job backlog): what the API's
   * queue gauges read, at most about once a second per process. Models with nothing pending
   * have no line.
   */
  async queues(): Promise<ModelQueueLine[]> {
    const { rows } = await this.pool.query<ModelQueueLine>(
      `select model,
         coalesce(sum(jobs) filter (where "startedAt" is null and not "batchChunk"), 0)::int as "queuedJobs",
         coalesce(sum(jobs) filter (where "startedAt" is null and "batchChunk"), 0)::int as "queuedItems",
         coalesce(sum(jobs) filter (where "startedAt" is not null), 0)::int as running,
         extract(epoch from now() - min("createdAt") filter (where "startedAt" is null))::float8 as "oldestQueuedAgeSeconds"
       from dispatches group by model order by model`,
    );
    return rows;
  }
}

/** What the outcome path updates when jobs end without a run (see DispatchStore.takeOff). */
export type EntryCountStore = Pick<DispatchStore, "takeOff">;

/** What the workers' reconciler reads and deletes. */
export type ReconcilerStore = Pick<DispatchStore, "pendingEntries" | "pendingItems" | "delete">;

/** What the API's MAX_QUEUE_DEPTH check reads. */
export type QueueDepthStore = Pick<DispatchStore, "pendingByModel">;

/** What the API's fair-share ranking of new queue entries reads. */
export type QueueClassStore = Pick<DispatchStore, "queuedByClass">;

/** What the API's per-tenant quota check reads. */
export type TenantQuotaStore = Pick<DispatchStore, "queuedByTenant">;

/** What the API's queue gauges (/metrics) read. */
export type QueueGaugeStore = Pick<DispatchStore, "queues">;

/** What the queue status route reads. */
export type QueueStatusStore = Pick<DispatchStore, "tenantQueue" | "modelQueue">;
