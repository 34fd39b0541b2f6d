import type { FinishedJob, JobOutcome, JobStore } from "@inferline/db";

interface Waiting {
  outcomes: JobOutcome[];
  dispatchId: string | undefined;
  resolve: (jobs: FinishedJob[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for results: outcomes that arrive while a write is in flight are written together
 * in the next statement, so one UPDATE carries many jobs under load and a lone job waits for no
 * timer.
 */
export class ResultWriter {
  private waiting: Waiting[] = [];
  private writing = false;

  constructor(
    private readonly store: JobStore,
    private readonly onFinished: (jobs: FinishedJob[]) => Promise<void>,
  ) {}

  /**
   * Resolves, once written, with the jobs this write moved to a terminal state. `dispatchId`
   * names the queue entry these are all the results of (it is then done).
   */
  write(outcomes: JobOutcome[], dispatchId?: string): Promise<FinishedJob[]> {
    if (outcomes.length === 0 && !dispatchId) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.waiting.push({ outcomes, dispatchId, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const group = this.waiting;
      this.waiting = [];
      try {
        const finished = await this.store.finish(
          group.flatMap((w) => w.outcomes),
          group.flatMap((w) => w.dispatchId ?? []),
        );
        await this.onFinished(finished).catch(() => {});
        const byId = new Map(finished.map((f) => [f.id, f]));
        for (const w of group) w.resolve(w.outcomes.flatMap((o) => byId.get(o.id) ?? []));
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    }
    this.writing = false;
  }
}
