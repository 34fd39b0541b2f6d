import type { RedisConnection } from "./redis.ts";
import { finishedChannel } from "./names.ts";

/** The most JSON of job views one finished message carries (see FinishedNotifier.publish); the jobs past it are announced by id alone. */
export const MAX_ANNOUNCED_VIEW_BYTES = 16 * 1024;

/**
 * Workers announce finished jobs in one message per write, not one per job: the ids, comma
 * separated, then optionally `,` and a JSON object of job views by id (the jobs as GET shows
 * them), so that a long-poll can answer without reading the job again. A listener that predates
 * the views splits the whole message on commas and matches none of the JSON's fragments (JSON
 * has no bare id between commas), so old and new processes share the channel.
 */
export class FinishedNotifier {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  /** `views`: JSON text of some of the jobs, by id; those within MAX_ANNOUNCED_VIEW_BYTES travel with the ids. */
  async publish(jobIds: string[], views?: ReadonlyMap<string, string>): Promise<void> {
    if (jobIds.length > 0) await this.redis.publish(finishedChannel(this.prefix), finishedMessage(jobIds, views));
  }
}

function finishedMessage(jobIds: string[], views: ReadonlyMap<string, string> | undefined): string {
  const ids = jobIds.join(",");
  if (!views || views.size === 0) return ids;
  const entries: string[] = [];
  let bytes = 0;
  for (const [id, json] of views) {
    if (bytes + json.length > MAX_ANNOUNCED_VIEW_BYTES) continue;
    entries.push(`"${id}":${json}`);
    bytes += json.length + id.length + 4;
  }
  return entries.length > 0 ? `${ids},{${entries.join(",")}}` : ids;
}

/** How a wait ended: the job announced (with its view when the message carried one), or not (deadline, abort, cancel). */
export type WaitEnd = { announced: false } | { announced: true; view?: unknown };

const NOT_ANNOUNCED: WaitEnd = { announced: false };

/** Default of `recheckMs` (and of the API's LONG_POLL_RECHECK_MS). */
export const DEFAULT_RECHECK_MS = 5000;

/**
 * Wakes long-polls when their job finishes. The message only says "look again": the database
 * stays the source of truth. Pub/sub is at-most-once, so waiters also look again every
 * `recheckMs` (a missed message costs that long, not the whole wait).
 */
export class FinishedListener {
  private readonly waiters = new Map<string, Set<(view: unknown) => void>>();

  private constructor(
    private readonly subscriber: RedisConnection,
    readonly recheckMs: number,
  ) {}

  static async start(
    subscriber: RedisConnection,
    prefix: string,
    options: { recheckMs?: number } = {},
  ): Promise<FinishedListener> {
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
    const split = message.indexOf(",{");
    // Parsed once, and only when a waiter here is named: most messages name nobody waiting here.
    let views: Record<string, unknown> | undefined | null = null;
    for (const id of (split < 0 ? message : message.slice(0, split)).split(",")) {
      const set = this.waiters.get(id);
      if (!set) continue;
      if (views === null) views = split < 0 ? undefined : parseViews(message.slice(split + 1));
      this.waiters.delete(id);
      for (const wake of set) wake(views?.[id]);
    }
  }

  /** Resolves when the job is announced (with its view, when the message carried one), or not announced at the deadline or when `signal` aborts. */
  wait(jobId: string, timeoutMs: number, signal?: AbortSignal): { promise: Promise<WaitEnd>; cancel: () => void } {
    let cancel = () => {};
    const promise = new Promise<WaitEnd>((resolve) => {
      const set = this.waiters.get(jobId) ?? new Set<(view: unknown) => void>();
      this.waiters.set(jobId, set);
      const done = (end: WaitEnd) => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
        signal?.removeEventListener("abort", onAbort);
        resolve(end);
      };
      const wake = (view: unknown) => done(view === undefined ? { announced: true } : { announced: true, view });
      const onAbort = () => done(NOT_ANNOUNCED);
      const timer = setTimeout(() => done(NOT_ANNOUNCED), timeoutMs);
      set.add(wake);
      signal?.addEventListener("abort", onAbort);
      cancel = () => done(NOT_ANNOUNCED);
    });
    return { promise, cancel };
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => {});
  }
}

/** The views part of a finished message; a malformed one counts as none (the waiters read the job). */
function parseViews(json: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
