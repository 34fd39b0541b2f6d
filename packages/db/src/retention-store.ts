import type pg from "pg";

/**
 * The deletes of the retention pass, one page per call (the caller repeats a delete until a page
 * comes back short): small statements hold no lock for long, and the BRIN indexes on createdAt
 * keep each page from scanning a whole table. Deleting rows already gone is a no-op, so several
 * workers may run them at once. Each returns how many rows it deleted.
 */
export class RetentionStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Jobs finished before `cutoff`, except those whose webhook is still being retried. */
  deleteFinishedJobs(cutoff: Date, limit: number): Promise<number> {
    return this.deletePage(
      `delete from jobs where id in (
           select j.id from jobs j where j."createdAt" < $1 and j.status in ('succeeded', 'failed', 'canceled', 'expired') and j."completedAt" < $1
             and not exists (select 1 from webhook_events e where e."jobId" = j.id and e.status = 'pending')
           limit $2)`,
      cutoff,
      limit,
    );
  }

  /** Batches completed before `cutoff`; their chunks go with them (on delete cascade). */
  deleteCompletedBatches(cutoff: Date, limit: number): Promise<number> {
    return this.deletePage(
      `delete from batches where id in (select id from batches where "createdAt" < $1 and "completedAt" < $1 limit $2)`,
      cutoff,
      limit,
    );
  }

  /** Webhook events delivered, failed or gone before `cutoff`; their attempts go with them (on delete cascade). */
  deleteSettledWebhookEvents(cutoff: Date, limit: number): Promise<number> {
    return this.deletePage(
      `delete from webhook_events where id in (select id from webhook_events where "createdAt" < $1 and status <> 'pending' limit $2)`,
      cutoff,
      limit,
    );
  }

  private async deletePage(sql: string, cutoff: Date, limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(sql, [cutoff, limit]);
    return rowCount ?? 0;
  }
}
