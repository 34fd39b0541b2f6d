import type { Database, FinishedJob } from "@inferline/db";
import { recordJobEvents } from "./events.ts";
import type { WebhookQueue } from "./queue.ts";
import type { WebhookLogger } from "./worker.ts";

const MAX_PER_ROUND = 5000;
const RETRIES = 5;

/**
 * Records and enqueues job events off the result-writing path: `push` returns at once, and one
 * loop writes whatever accumulated since its last round (two statements and one Redis call per
 * round, however many jobs), so inference never waits on webhook bookkeeping. A failed round is
 * retried a few times, then logged.
 */
export class EventRecorder {
  private pending: FinishedJob[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly queue: WebhookQueue,
    private readonly logger: WebhookLogger,
  ) {}

  push(jobs: FinishedJob[]): void {
    for (const job of jobs) if (job.webhook) this.pending.push(job);
    if (this.pending.length > 0) this.running ??= this.drain();
  }

  /** Resolves once everything pushed so far is recorded (or given up on). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const round = this.pending.splice(0, MAX_PER_ROUND);
        for (let attempt = 1; ; attempt++) {
          try {
            await recordJobEvents(this.db, round, this.queue);
            break;
          } catch (err) {
            if (attempt >= RETRIES) {
              this.logger.error({ err: (err as Error).message, jobs: round.map((j) => j.id) }, "could not record webhook events");
              break;
            }
            await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
          }
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
