import type { RedisConnection } from "./redis.ts";
import { finishedChannel } from "./names.ts";

/** Workers announce finished jobs in one message per write, not one per job. */
export class FinishedNotifier {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async publish(jobIds: string[]): Promise<void> {
    if (jobIds.length > 0) await this.redis.publish(finishedChannel(this.prefix), jobIds.join(","));
  }
}

/** Default of `recheckMs` (and of the API's LONG_POLL_RECHECK_MS). */
export const DEFAULT_RECHECK_MS = 5000;

/**
 * Wakes long-polls when their job finishes. The message only says "look again": the database
 * stays the source of truth. Pub/sub is at-most-once, so waiters also look again every
 * `recheckMs` (a missed message costs that long, not the whole wait).
 */
export class FinishedListener {
  private readonly waiters = new Map<string, Set<() => void>>();

  private constructor(
    private readonly subscriber: RedisConnection,
    readonly recheckMs: number,
  ) {}

  static async start(subscriber: RedisConnection, prefix: string, options: { recheckMs?: number } = {}): Promise<FinishedListener> {
    const listener = new FinishedListener(subscriber, options.recheckMs ?? DEFAULT_RECHECK_MS);
    // The subscriber may carry other channels too (key revocations): only ours are job ids.
    const channel = finishedChannel(prefix);
    subscriber.on("message", (from: string, message: string) => {
      if (from === channel) listener.onMessage(message);
    });
    await subscriber.subscribe(channel);
    return listener;
  }

  private onMessage(message: string): void {
    for (const id of message.split(",")) {
      const set = this.waiters.get(id);
      if (!set) continue;
      this.waiters.delete(id);
      for (const wake of set) wake();
    }
  }

  /** Resolves true when the job is announced, false at the deadline or when `signal` aborts. */
  wait(jobId: string, timeoutMs: number, signal?: AbortSignal): { promise: Promise<boolean>; cancel: () => void } {
    let cancel = () => {};
    const promise = new Promise<boolean>((resolve) => {
      const set = this.waiters.get(jobId) ?? new Set<() => void>();
      this.waiters.set(jobId, set);
      const done = (hit: boolean) => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
        signal?.removeEventListener("abort", onAbort);
        resolve(hit);
      };
      const wake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(wake);
      signal?.addEventListener("abort", onAbort);
      cancel = () => done(false);
    });
    return { promise, cancel };
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => {});
  }
}
