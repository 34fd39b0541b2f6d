/**
 * Delay before each attempt, in ms, close to Svix's. The length is the number of attempts; the
 * first entry is the first attempt, which is always made as soon as the event is recorded.
 * WEBHOOK_RETRY_SCHEDULE_MS's default, in docs/configuration.md and .env.example too (generated).
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0, // immediately
  5_000, // 5 s
  300_000, // 5 min
  1_800_000, // 30 min
  7_200_000, // 2 h
  18_000_000, // 5 h
  36_000_000, // 10 h
  36_000_000, // 10 h
];

/**
 * Most attempts of one webhook event: the longest schedule WEBHOOK_RETRY_SCHEDULE_MS may set. The
 * webhooks queue's entries allow more BullMQ attempts than this (MAX_QUEUE_ATTEMPTS), derived from it.
 */
export const MAX_WEBHOOK_ATTEMPTS = 50;

/** Jitter spreads retries of events that failed together: each delay is scaled by a factor in [1 - JITTER, 1 + JITTER]. */
export const RETRY_JITTER = 0.2;

/** A Retry-After longer than this is clamped (a receiver cannot park an event for weeks). */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/** "0,5000,300000" → [0, 5000, 300000]. Throws on anything else. */
export function parseRetrySchedule(value: string): number[] {
  const parts = value
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const delays = parts.map(Number);
  if (
    delays.length === 0 ||
    delays.length > MAX_WEBHOOK_ATTEMPTS ||
    delays.some((d) => !Number.isInteger(d) || d < 0)
  ) {
    throw new Error(
      `a retry schedule is 1 to ${MAX_WEBHOOK_ATTEMPTS} comma-separated non-negative integers (ms), got ${JSON.stringify(value)}`,
    );
  }
  return delays;
}

/**
 * Delay before the next attempt once `attemptsMade` attempts have failed, or null when the
 * schedule is exhausted. A Retry-After from the receiver is honoured: the retry never comes
 * sooner than it asked.
 */
export function nextRetryDelay(
  schedule: readonly number[],
  attemptsMade: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | null {
  const base = schedule[attemptsMade];
  if (base === undefined) return null;
  const jittered = Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()));
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Retry-After as ms from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
