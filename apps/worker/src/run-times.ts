/** A model is fast once this many of its jobs ran... */
const MIN_RUNS = 20;
/** ...and their runs took this long on average (an exponentially weighted mean), in ms. */
const FAST_RUN_MS = 10;
/** Weight of each new run in the mean. */
const ALPHA = 0.1;

/**
 * How long each model's job runs take in this worker (from the start of a job's inference to its
 * outcome, batching included). A lone small job of a fast model may run before its claim (see
 * the processor's runCarried): it is then `queued` until its outcome is written, which for a run
 * of a few milliseconds nobody can tell from `running`. A model that has not proved fast in this
 * process (too few runs, or slow ones) always claims first, so `running` shows for as long as it
 * lasts, and a job that kills its worker has each of its runs counted.
 */
export class RunTimes {
  private readonly models = new Map<string, { runs: number; meanMs: number }>();

  record(model: string, ms: number): void {
    const seen = this.models.get(model);
    if (!seen) return void this.models.set(model, { runs: 1, meanMs: ms });
    seen.runs++;
    seen.meanMs += ALPHA * (ms - seen.meanMs);
  }

  isFast(model: string): boolean {
    const seen = this.models.get(model);
    return seen !== undefined && seen.runs >= MIN_RUNS && seen.meanMs <= FAST_RUN_MS;
  }
}
