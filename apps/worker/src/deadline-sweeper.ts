import type { Logger } from "pino";
import type { OutcomeSystem, SweptPage } from "@inferline/outcomes";
import { PeriodicPass } from "./periodic-pass.ts";

export interface DeadlineSweepOptions {
  /** Time between passes, ms; 0 runs no timer (runOnce still works, and claims still check deadlines). */
  intervalMs: number;
  logger: Logger;
  /** Rows per statement: small enough that no statement holds locks for long. Default 500. */
  pageSize?: number;
  /** Pages of one kind per pass at most, so a huge backlog cannot hold one pass for long. Default 100. */
  maxPages?: number;
}

/** What one pass ended. */
export interface DeadlinePass {
  /** Jobs expired: not started by their queue deadline. */
  expiredJobs: number;
  /** Jobs canceled at their Cancel-After time. */
  canceledJobs: number;
  /** Batch items expired. */
  expiredItems: number;
  /** Batches canceled at their Cancel-After time. */
  canceledBatches: number;
}

/**
 * Ends work on time that nobody claims: a worker checks deadlines when it claims work, but a job
 * may wait far past its deadline in a deep queue, or in the queue of a model no worker serves.
 * Each pass expires queued jobs and unstarted batch chunks past their queue deadline, and
 * cancels jobs and batches past their Cancel-After time (running ones too: a late result then
 * changes nothing), all through the OutcomeSystem (events, long-poll wake-ups, batch settlement).
 * Several workers may run it at once: every page locks its rows with `skip locked`, and a batch
 * cancel locks the batch's chunks first, so two passes never end the same work twice. The
 * partial indexes on the deadline columns keep each page from scanning the tables.
 */
export class DeadlineSweeper {
  private readonly periodic: PeriodicPass<DeadlinePass>;

  constructor(
    private readonly outcomes: Pick<
      OutcomeSystem,
      "expireOverdueJobs" | "cancelOverdueJobs" | "expireOverdueItems" | "cancelOverdueBatches"
    >,
    private readonly options: DeadlineSweepOptions,
  ) {
    this.periodic = new PeriodicPass(() => this.pass(), {
      intervalMs: options.intervalMs,
      logger: options.logger,
      failure: "deadline sweep failed",
    });
  }

  start(): void {
    this.periodic.start();
  }

  runOnce(): Promise<DeadlinePass> {
    return this.periodic.runOnce();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  private async pass(): Promise<DeadlinePass> {
    const pass: DeadlinePass = {
      expiredJobs: await this.all((limit) => this.outcomes.expireOverdueJobs(limit)),
      canceledJobs: await this.all((limit) => this.outcomes.cancelOverdueJobs(limit)),
      expiredItems: await this.all((limit) => this.outcomes.expireOverdueItems(limit)),
      canceledBatches: await this.all((limit) => this.outcomes.cancelOverdueBatches(limit)),
    };
    if (Object.values(pass).some((n) => n > 0)) this.options.logger.info(pass, "ended work past its deadline");
    return pass;
  }

  /** Repeats a page until one comes back short (or maxPages); returns how many it ended. */
  private async all(page: (limit: number) => Promise<SweptPage>): Promise<number> {
    const size = this.options.pageSize ?? 500;
    let ended = 0;
    for (let i = 0; i < (this.options.maxPages ?? 100); i++) {
      const swept = await page(size);
      ended += swept.ended;
      if (swept.due < size) break;
    }
    return ended;
  }
}
