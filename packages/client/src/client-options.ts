/** Settings of an InferlineClient. */
export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:3000` (a trailing slash is fine). */
  baseUrl: string;
  /** A tenant's API key (sent as `Authorization: Bearer …`, never logged). */
  apiKey: string;
  /** Further attempts after a network error, a timeout, a 429 or a 503, for requests that can be replayed (default 5). */
  retries?: number;
  /** The longest wait between attempts, a server's Retry-After included (default 30,000). */
  maxRetryDelayMs?: number;
  /** How long one attempt may wait for its answer; a long-poll adds the seconds it asks to wait (default 60,000). */
  timeoutMs?: number;
  /** The fetch to use (default the global one: Node 20's undici). */
  fetch?: typeof fetch;
}

export const DEFAULT_RETRIES = 5;
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 60_000;
