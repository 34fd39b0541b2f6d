import type { ClaimedChunk, ClaimedJob, ExpiredChunks, FinishedJob, Queryable, RecordedEvent } from "@inferline/db";
import type { CancelSystem } from "./cancel-system.ts";
import { itemsExpired } from "./decisions.ts";
import type { EventSystem } from "./event-system.ts";
import type { OutcomeResources, SweptPage } from "./resources.ts";

/**
 * Deadlines: `maxQueueSeconds` (work not started in time expires) and `Cancel-After` (work not
 * terminal in time is canceled), enforced where work is claimed (what is overdue ends instead of
 * running) and by the deadline sweep's pages.
 */
export class DeadlineSystem {
  constructor(
    private readonly r: Pick<OutcomeResources, "db" | "jobs" | "chunks" | "batches" | "logger">,
    private readonly events: EventSystem,
    private readonly cancels: CancelSystem,
  ) {}

  /** See OutcomeSystem.claimJobs. */
  async claimJobs(ids: string[], entryId?: string): Promise<ClaimedJob[]> {
    const { claimed, overdue } = await this.r.jobs.claim(ids, entryId);
    if (overdue.length > 0) {
      await this.cancels
        .endJobs((client) => this.r.jobs.endOverdue(overdue, client))
        .catch((err: Error) =>
          this.r.logger.warn({ err: err.message }, "ending overdue jobs at claim failed; the deadline sweep ends them"),
        );
    }
    return claimed;
  }

  /** See OutcomeSystem.claimChunk. */
  async claimChunk(chunkId: string): Promise<ClaimedChunk | null> {
    const chunk = await this.r.chunks.claim(chunkId);
    if (chunk) return chunk;
    await this.endOverdueChunk(chunkId).catch((err: Error) =>
      this.r.logger.warn({ err: err.message }, "ending an overdue chunk at claim failed; the deadline sweep ends it"),
    );
    return null;
  }

  /** One page of the deadline sweep over jobs: queued jobs past their queue deadline expire. */
  expireOverdueJobs(limit: number): Promise<SweptPage> {
    return this.sweepJobs((client) => this.r.jobs.expireOverdue(limit, client));
  }

  /** One page of the Cancel-After sweep over jobs: jobs not terminal past their cancelAt are canceled. */
  cancelOverdueJobs(limit: number): Promise<SweptPage> {
    return this.sweepJobs((client) => this.r.jobs.cancelOverdue(limit, client));
  }

  /** One page of the deadline sweep over batch items: unstarted chunks of batches past their queue deadline expire. */
  async expireOverdueItems(limit: number): Promise<SweptPage> {
    const expired = await this.expireItems({ limit });
    return { due: expired.chunks, ended: expired.items };
  }

  /** One page of the Cancel-After sweep over batches: each batch past its cancelAt is canceled (see cancelBatch), in a transaction of its own. */
  async cancelOverdueBatches(limit: number): Promise<SweptPage> {
    const due = await this.r.batches.dueForCancel(limit);
    let ended = 0;
    for (const batchId of due) if (await this.cancels.cancelBatch(batchId)) ended++;
    return { due: due.length, ended };
  }

  private async endOverdueChunk(chunkId: string): Promise<void> {
    const due = await this.r.chunks.overdue(chunkId);
    if (due?.cancel) await this.cancels.cancelBatch(due.batchId);
    else if (due?.expire) await this.expireItems({ ids: [chunkId] });
  }

  /** Expires unstarted chunks' items (see BatchChunkStore.expire) with `batch.completed` for each batch that completes, in one transaction. */
  private async expireItems(select: { ids: string[] } | { limit: number }): Promise<ExpiredChunks> {
    const { expired, events } = await this.r.db.transaction(async (client) => {
      const expired = await this.r.chunks.expire(select, client);
      const events: RecordedEvent[] = [];
      for (const settlement of expired.settlements)
        events.push(...(await this.events.batchCompleted(settlement, client)));
      return { expired, events };
    });
    if (expired.items > 0)
      await this.events.afterCommit({
        channels: expired.batchIds,
        events,
        emptied: expired.emptied,
        ended: itemsExpired(expired),
      });
    return expired;
  }

  private async sweepJobs(
    page: (client: Queryable) => Promise<{ due: number; finished: FinishedJob[] }>,
  ): Promise<SweptPage> {
    let due = 0;
    const ended = await this.cancels.endJobs(async (client) => {
      const swept = await page(client);
      due = swept.due;
      return swept.finished;
    });
    return { due, ended: ended.length };
  }
}
