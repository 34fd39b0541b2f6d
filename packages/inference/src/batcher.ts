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

/**
 * Whose work an item is: items of different keys take turns in the batcher's queue (start-time
 * fair queuing, by rows per unit of weight); items of one key keep their order.
 */
export interface Share {
  key: string;
  /** Its rows count 1/weight against its turn. Default 1. */
  weight?: number;
}

/** The submit options: see DynamicBatcher.submit. */
export interface SubmitOptions {
  alone?: boolean;
  share?: Share;
}

interface Pending<I, R> {
  item: I;
  rows: number;
  /** Its flow's key (see Share); "" when none was given. */
  key: string;
  /** Its start tag: the batcher's virtual time when its flow's earlier items will have had their turn. */
  start: number;
  /** Runs in a batch of its own (a retry of an item whose batch timed out or crashed). */
  alone: boolean;
  at: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** One key's items in the queue: how many, and the start tag its next item takes at the earliest. */
interface Flow {
  queued: number;
  finish: number;
}

/**
 * Triton-style dynamic batching: a batch is dispatched at once when it is full, otherwise when its
 * oldest item has waited `maxQueueDelayMs` (0: once the synchronous run that submitted it ends).
 * While every run slot is busy, items keep gathering, so batches grow with load.
 *
 * The queue is ordered by start-time fair queuing over the items' share keys (tenants): an item
 * waits behind its own key's earlier items, but only behind one turn of each other key's. A
 * worker's slots hand a slow model rows of several entries at once; without turns, a light
 * tenant's one row would wait behind every row a heavy tenant's entries had queued.
 */
export class DynamicBatcher<I, R> {
  private queue: Pending<I, R>[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A gatherTick flush is pending. */
  private gathering = false;
  private readonly maxInFlight: number;
  /** The start tag of the last item taken into a batch. */
  private virtualTime = 0;
  private readonly flows = new Map<string, Flow>();

  constructor(private readonly options: BatcherOptions<I, R>) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  /**
   * `alone`: run the item in a batch of its own, at once (it is a suspect, and waiting for others
   * would only add company for it to take down). `share`: whose turn the item takes (see Share).
   */
  submit(item: I, options: SubmitOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const rows = this.options.rowsOf(item);
      const key = options.share?.key ?? "";
      const start = this.turn(key, rows / Math.max(options.share?.weight ?? 1, 1e-3));
      this.enqueue({ item, rows, key, start, alone: options.alone ?? false, at: performance.now(), resolve, reject });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** The start tag of a `key` item costing `cost`: after its flow's queued items, never before now. */
  private turn(key: string, cost: number): number {
    let flow = this.flows.get(key);
    if (!flow) this.flows.set(key, (flow = { queued: 0, finish: 0 }));
    const start = Math.max(this.virtualTime, flow.finish);
    flow.finish = start + cost;
    flow.queued++;
    return start;
  }

  /** Inserts by start tag, after every item with the same tag (so one key's items keep their order). */
  private enqueue(pending: Pending<I, R>): void {
    const q = this.queue;
    if (q.length === 0 || q[q.length - 1]!.start <= pending.start) return void q.push(pending);
    let [lo, hi] = [0, q.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q[mid]!.start <= pending.start) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, pending);
  }

  /** Items left the queue: virtual time moves to their tags; a flow with nothing queued and no turn ahead is forgotten. */
  private taken(batch: Pending<I, R>[]): void {
    for (const p of batch) {
      this.virtualTime = Math.max(this.virtualTime, p.start);
      const flow = this.flows.get(p.key)!;
      if (--flow.queued === 0 && flow.finish <= this.virtualTime) this.flows.delete(p.key);
    }
    // Flows whose turns virtual time has passed since they emptied hold nothing: under constant
    // load (never idle) they would pile up, one per tenant ever served.
    if (this.flows.size > 64 + this.queue.length)
      for (const [key, flow] of this.flows)
        if (flow.queued === 0 && flow.finish <= this.virtualTime) this.flows.delete(key);
  }

  /** Nothing queued or running: no flow has a claim on a later turn. */
  private forgetTurnsWhenIdle(): void {
    if (this.queue.length > 0 || this.inFlight > 0) return;
    this.flows.clear();
    this.virtualTime = 0;
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
        this.forgetTurnsWhenIdle();
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
    this.taken(batch);
    return batch;
  }
}
