import { ServiceUnavailableError } from "@inferline/contracts";

/** Seconds a client is told to wait when a model's queue is full. */
const RETRY_AFTER_S = 5;

/**
 * MAX_QUEUE_DEPTH for everything that enqueues work (single jobs and batches). A model's depth
 * (queued jobs and batch items, from `pending`) is read at most once per `maxAgeMs`; work this
 * process queues in between counts itself in, so a burst cannot overshoot the limit between readings.
 */
export class QueueDepthGuard {
  private readonly cache = new Map<string, { depth: number; at: number }>();

  constructor(
    private readonly pending: (model: string) => Promise<number>,
    readonly maxDepth: number,
    private readonly maxAgeMs = 1000,
  ) {}

  /**
   * Throws 503 `queue_full` (Retry-After) when the model's queue is at its limit already, or
   * `adding` more would take it past. `adding` 0 asks only the first (a batch whose size is not
   * known yet).
   */
  async assertRoom(model: string, adding = 1): Promise<void> {
    this.decide(model, this.freshDepth(model) ?? (await this.read(model)), adding);
  }

  /** assertRoom without waiting: true once decided (it throws when full), false when the cached depth is too old to decide on. */
  roomNow(model: string, adding = 1): boolean {
    const depth = this.freshDepth(model);
    if (depth === undefined) return false;
    this.decide(model, depth, adding);
    return true;
  }

  private decide(model: string, depth: number, adding: number): void {
    if (depth >= this.maxDepth) {
      throw new ServiceUnavailableError(
        "queue_full",
        `model ${model} has ${depth} queued jobs (limit ${this.maxDepth}); retry later`,
        RETRY_AFTER_S,
      );
    }
    if (depth + adding > this.maxDepth) {
      throw new ServiceUnavailableError(
        "queue_full",
        `model ${model} has ${depth} queued jobs (limit ${this.maxDepth}); ${adding} more would exceed it; retry later or send fewer`,
        RETRY_AFTER_S,
      );
    }
  }

  /** Counts `n` jobs this process just queued into the cached depth. */
  noteQueued(model: string, n = 1): void {
    const cached = this.cache.get(model);
    if (cached) cached.depth += n;
  }

  private freshDepth(model: string): number | undefined {
    const cached = this.cache.get(model);
    return cached && Date.now() - cached.at < this.maxAgeMs ? cached.depth : undefined;
  }

  private async read(model: string): Promise<number> {
    const depth = await this.pending(model);
    this.cache.set(model, { depth, at: Date.now() });
    return depth;
  }
}
