import { isRowFault, type FinishedJob, type JobOutcome } from "@inferline/db";

/** What one group write produced: the jobs it finished, and anything recorded with them (events). */
export interface Written<E> {
  finished: FinishedJob[];
  recorded: E;
}

interface Waiting {
  outcomes: JobOutcome[];
  dispatchId: string | undefined;
  standalone: boolean;
  resolve: (jobs: FinishedJob[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for results: outcomes that arrive while a write is in flight are written together
 * in the next one, so one transaction carries many jobs under load and a lone job waits for no
 * timer. `persist` writes a group (results, processed queue entries, their events) atomically;
 * `after` runs once it is committed (notify waiters, enqueue deliveries). OutcomeSystem gives it
 * both; nothing else constructs one.
 */
export class ResultWriter<E> {
  private waiting: Waiting[] = [];
  private writing = false;

  constructor(
    /** `standalone`: every outcome of the group is of a job whose write touches its own row only (ClaimedJob.standalone). */
    private readonly persist: (
      outcomes: JobOutcome[],
      doneDispatches: string[],
      standalone: boolean,
    ) => Promise<Written<E>>,
    private readonly after: (written: Written<E>) => Promise<void>,
  ) {}

  /**
   * Resolves, once written, with the jobs this write moved to a terminal state. `dispatchId`
   * names the queue entry these are all the results of (it is then done); `standalone`, that
   * each outcome's job has no webhook and leads no single flight (see ClaimedJob.standalone).
   */
  write(outcomes: JobOutcome[], dispatchId?: string, standalone = false): Promise<FinishedJob[]> {
    if (outcomes.length === 0 && !dispatchId) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.waiting.push({ outcomes, dispatchId, standalone, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const group = this.waiting;
      this.waiting = [];
      try {
        await this.writeGroup(group);
      } catch (err) {
        if (group.length === 1 || !isRowFault(err)) {
          for (const w of group) w.reject(err);
          continue;
        }
        // One entry's data failed the statement: write each entry on its own, so only it fails.
        for (const w of group) await this.writeGroup([w]).catch((e: unknown) => w.reject(e));
      }
    }
    this.writing = false;
  }

  private async writeGroup(group: Waiting[]): Promise<void> {
    const written = await this.persist(
      group.flatMap((w) => w.outcomes),
      group.flatMap((w) => w.dispatchId ?? []),
      group.every((w) => w.standalone),
    );
    await this.after(written).catch(() => {});
    const byId = new Map(written.finished.map((f) => [f.id, f]));
    for (const w of group) w.resolve(w.outcomes.flatMap((o) => byId.get(o.id) ?? []));
  }
}
