export interface BatcherOptions<I, R> {
  /** Largest sum of `rowsOf` in one run. */
  maxBatchSize: number;
  /** How long the oldest waiting item may wait for the batch to fill. */
  maxQueueDelayMs: number;
  /** Runs that may be in flight at once (e.g. the size of a thread pool). Default 1. */
  maxInFlight?: number;
  rowsOf: (item: I) => number;
  /** Runs one batch; must return one result per item, in order. */
  run: (items: I[]) => Promise<R[]>;
}

interface Pending<I, R> {
  item: I;
  rows: number;
  /** Runs in a batch of its own (a retry of an item whose batch timed out or crashed). */
  alone: boolean;
  at: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Triton-style dynamic batching: a batch is dispatched at once when it is full, otherwise when its
 * oldest item has waited `maxQueueDelayMs` (0: once the synchronous run that submitted it ends). While every run slot is busy, items keep gathering,
 * so batches grow with load.
 */
export class DynamicBatcher<I, R> {
  private queue: Pending<I, R>[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A gatherTick flush is pending. */
  private gathering = false;
  private readonly maxInFlight: number;

  constructor(private readonly options: BatcherOptions<I, R>) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  /** `alone`: run the item in a batch of its own, at once (it is a suspect, and waiting for others would only add company for it to take down). */
  submit(item: I, options: { alone?: boolean } = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const rows = this.options.rowsOf(item);
      this.queue.push({ item, rows, alone: options.alone ?? false, at: performance.now(), resolve, reject });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  get size(): number {
    return this.queue.length;
  }

  private schedule(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const head = this.queue[0]!;
      const waited = performance.now() - head.at;
      const full = head.alone || this.queuedRows >= this.options.maxBatchSize;
      if (!full && this.options.maxQueueDelayMs === 0) return this.gatherTick();
      if (!full && waited < this.options.maxQueueDelayMs) {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.schedule();
        }, this.options.maxQueueDelayMs - waited);
        return;
      }
      this.flushOne();
    }
  }

  /**
   * With no queue delay, a batch that is not full still waits for the end of the synchronous run
   * that submitted it (a microtask, no timer): the jobs of one queue entry, submitted in one loop,
   * run as one batch instead of the first alone and the rest behind it.
   */
  private gatherTick(): void {
    if (this.gathering) return;
    this.gathering = true;
    queueMicrotask(() => {
      this.gathering = false;
      while (this.inFlight < this.maxInFlight && this.queue.length > 0) this.flushOne();
    });
  }

  private flushOne(): void {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.take();
    this.inFlight++;
    this.options
      .run(batch.map((p) => p.item))
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i]!)),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
  }

  /** The longest prefix within maxBatchSize rows (always at least one item); an item to run alone is a batch by itself. */
  private take(): Pending<I, R>[] {
    let rows = 0;
    let n = 0;
    while (n < this.queue.length) {
      const next = this.queue[n]!;
      if (n > 0 && (next.alone || rows + next.rows > this.options.maxBatchSize)) break;
      rows += next.rows;
      n++;
      if (next.alone) break;
    }
    const batch = this.queue.splice(0, n);
    this.queuedRows -= rows;
    return batch;
  }
}
