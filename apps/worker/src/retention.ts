import type { Logger } from "pino";
import type { Database } from "@inferline/db";
import { PeriodicPass } from "./periodic-pass.ts";

export interface RetentionOptions {
  /** Terminal jobs, completed batches and settled webhook events older than this are deleted. */
  days: number;
  /** Time between passes, ms; 0 runs no timer (runOnce still works). */
  intervalMs: number;
  logger: Logger;
  /** Rows per delete statement: small enough that no statement holds locks for long. Default 5000. */
  pageSize?: number;
}

export interface RetentionPass {
  jobs: number;
  batches: number;
  webhookEvents: number;
}

/**
 * Keeps the tables from growing without bound: deletes, page by page, jobs that finished more
 * than `days` ago (not those whose webhook is still being retried), batches completed that long
 * ago (their chunks go with them), and webhook events delivered, failed or gone that long ago
 * (their attempts go with them). Several workers may run it at once: a delete of rows already
 * gone is a no-op. The BRIN indexes on createdAt keep each page from scanning the whole table.
 */
export class RetentionSweeper {
  private readonly periodic: PeriodicPass<RetentionPass>;

  constructor(private readonly db: Database, private readonly options: RetentionOptions) {
    this.periodic = new PeriodicPass(() => this.pass(), { intervalMs: options.days > 0 ? options.intervalMs : 0, logger: options.logger, failure: "retention pass failed" });
  }

  start(): void {
    this.periodic.start();
  }

  runOnce(): Promise<RetentionPass> {
    return this.periodic.runOnce();
  }

  private async pass(): Promise<RetentionPass> {
    if (this.options.days <= 0) return { jobs: 0, batches: 0, webhookEvents: 0 }; // 0 keeps everything
    const cutoff = new Date(Date.now() - this.options.days * 24 * 3600 * 1000);
    const pass = {
      jobs: await this.deleteAll(
        `delete from jobs where id in (
           select j.id from jobs j where j."createdAt" < $1 and j.status in ('succeeded', 'failed', 'canceled') and j."completedAt" < $1
             and not exists (select 1 from webhook_events e where e."jobId" = j.id and e.status = 'pending')
           limit $2)`,
        cutoff,
      ),
      batches: await this.deleteAll(`delete from batches where id in (select id from batches where "createdAt" < $1 and "completedAt" < $1 limit $2)`, cutoff),
      webhookEvents: await this.deleteAll(`delete from webhook_events where id in (select id from webhook_events where "createdAt" < $1 and status <> 'pending' limit $2)`, cutoff),
    };
    if (pass.jobs + pass.batches + pass.webhookEvents > 0) this.options.logger.info(pass, "deleted records past retention");
    return pass;
  }

  private async deleteAll(sql: string, cutoff: Date): Promise<number> {
    const page = this.options.pageSize ?? 5000;
    let total = 0;
    for (;;) {
      const { rowCount } = await this.db.pool.query(sql, [cutoff, page]);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < page) return total;
    }
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
