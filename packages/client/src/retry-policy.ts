/** First backoff delay; each further attempt doubles it (up to the client's maxRetryDelayMs). */
const BASE_DELAY_MS = 250;

/** Socket-level failures worth another attempt: the request may not have reached the API, or its answer was lost. */
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** Answers that say "not now" and that nothing was done: rate limits, quotas, a full queue, a dependency down. */
const NOTHING_DONE = new Set([429, 503]);
/** Answers after which the request may or may not have been carried out: a proxy's or gateway's timeout, a bad gateway. */
const OUTCOME_UNKNOWN = new Set([408, 502, 504]);

/**
 * Whether an answer is worth another attempt: 429 and 503 for any request that can be sent again,
 * 408, 502 and 504 only for an idempotent one (a read, or a create with an Idempotency-Key),
 * which the API carries out at most once however often it arrives.
 */
export const isRetryableStatus = (status: number, idempotent: boolean): boolean =>
  NOTHING_DONE.has(status) || (idempotent && OUTCOME_UNKNOWN.has(status));

/**
 * Whether `err`, thrown by fetch or while reading a body, is a network failure worth another
 * attempt. Node's fetch wraps them as `TypeError: fetch failed` (a body cut short: `terminated`)
 * with the socket error as `cause`, whose code says which it was; a refused URL (a "bad port"),
 * an unknown host (ENOTFOUND) or a TLS failure are not retried.
 */
export function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && RETRYABLE_CODES.has(code)) return true;
    // Happy eyeballs: one error per address tried.
    if (e instanceof AggregateError && e.errors.some(isNetworkError)) return true;
  }
  return false;
}

/**
 * A Retry-After header in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its day and month ("Mon, 05 Jan 2026 10:00:07 GMT"); Date.parse alone takes "-1" for a year.
  const at = /[a-z]{3}/i.test(trimmed) ? Date.parse(trimmed) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How long to wait before attempt `attempt + 1`: what the server asked for (capped at `maxMs`,
 * plus up to 10 % so that many clients told the same second do not return at once), else
 * exponential backoff with full jitter over [half, whole]. The same curve as @inferline/runtime's
 * backoffDelay, written here on purpose: the published SDK depends on no workspace package.
 */
export function retryDelayMs(attempt: number, maxMs: number, serverMs?: number, random = Math.random): number {
  if (serverMs !== undefined) return Math.min(maxMs, serverMs) * (1 + random() * 0.1);
  const ceiling = Math.min(maxMs, BASE_DELAY_MS * 2 ** attempt);
  return ceiling * (0.5 + random() * 0.5);
}
