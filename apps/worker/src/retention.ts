import type { Logger } from "pino";
import type { RetentionStore } from "@inferline/db";
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

  constructor(
    private readonly store: RetentionStore,
    private readonly options: RetentionOptions,
  ) {
    this.periodic = new PeriodicPass(() => this.pass(), {
      intervalMs: options.days > 0 ? options.intervalMs : 0,
      logger: options.logger,
      failure: "retention pass failed",
    });
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
      jobs: await this.deleteAll((limit) => this.store.deleteFinishedJobs(cutoff, limit)),
      batches: await this.deleteAll((limit) => this.store.deleteCompletedBatches(cutoff, limit)),
      webhookEvents: await this.deleteAll((limit) => this.store.deleteSettledWebhookEvents(cutoff, limit)),
    };
    if (pass.jobs + pass.batches + pass.webhookEvents > 0)
      this.options.logger.info(pass, "deleted records past retention");
    return pass;
  }

  /** Repeats a page's delete until a page comes back short. */
  private async deleteAll(deletePage: (limit: number) => Promise<number>): Promise<number> {
    const page = this.options.pageSize ?? 5000;
    let total = 0;
    for (;;) {
      const deleted = await deletePage(page);
      total += deleted;
      if (deleted < page) return total;
    }
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
