import type { ModelQueueLine, QueueGaugeStore } from "@inferline/db";

/** One model's queue as the gauges show it. */
export interface ModelQueueReading {
  model: string;
  queuedJobs: number;
  queuedItems: number;
  running: number;
  /** When the oldest waiting entry was queued (ms since the epoch), so that a reused reading's age still grows; null when none waits. */
  oldestQueuedAt: number | null;
}

/** Every model's queue at one moment. */
export interface QueueReading {
  /** When it was read (ms since the epoch). */
  at: number;
  models: ModelQueueReading[];
}

export interface QueueReadingsOptions {
  /** A reading younger than this is served again without a read. Default 1000. */
  maxAgeMs?: number;
  /** How long a scrape waits for a fresh read before it is answered with the previous reading. Default 500. */
  waitMs?: number;
  /** Told of each failed read (the caller decides how loudly). */
  onFailure?: (err: Error) => void;
}

/**
 * The queue gauges' numbers (queued jobs and batch items, running work and the oldest wait, per
 * model), read from PostgreSQL in one statement for every model at most once per `maxAgeMs`
 * however often /metrics is scraped, and shared by every gauge of a scrape. A scrape never fails
 * for it: a read that fails keeps the last reading (and counts a failure), and one slower than
 * `waitMs` is answered with the last reading while it goes on (the next scrape gets its result).
 * Models of the repository with nothing pending read as zeros, so their series never vanish.
 */
export class QueueReadings {
  private last: QueueReading | undefined;
  private reading: Promise<QueueReading | undefined> | undefined;
  failures = 0;

  constructor(
    private readonly store: QueueGaugeStore,
    private readonly models: readonly string[],
    private readonly options: QueueReadingsOptions = {},
  ) {}

  /** The freshest reading to be had within `waitMs`, or undefined while no read has succeeded yet. */
  async current(): Promise<QueueReading | undefined> {
    if (this.last && Date.now() - this.last.at < (this.options.maxAgeMs ?? 1000)) return this.last;
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), this.options.waitMs ?? 500)),
    );
    try {
      return (await Promise.race([this.reading, late])) ?? this.last;
    } finally {
      clearTimeout(timer);
    }
  }

  private async read(): Promise<QueueReading | undefined> {
    try {
      const lines = await this.store.queues();
      this.last = toReading(Date.now(), lines, this.models);
      return this.last;
    } catch (err) {
      this.failures++;
      this.options.onFailure?.(err as Error);
      return undefined;
    }
  }
}

function toReading(at: number, lines: ModelQueueLine[], known: readonly string[]): QueueReading {
  const byModel = new Map<string, ModelQueueReading>(
    known.map((model) => [model, { model, queuedJobs: 0, queuedItems: 0, running: 0, oldestQueuedAt: null }]),
  );
  for (const l of lines) {
    const oldestQueuedAt = l.oldestQueuedAgeSeconds === null ? null : at - l.oldestQueuedAgeSeconds * 1000;
    byModel.set(l.model, {
      model: l.model,
      queuedJobs: l.queuedJobs,
      queuedItems: l.queuedItems,
      running: l.running,
      oldestQueuedAt,
    });
  }
  return { at, models: [...byModel.values()] };
}
