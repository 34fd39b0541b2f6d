/** Settings of an InferlineClient; every one but `fetch` can be overridden per call (RequestOptions). */
export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:3000` (a trailing slash is fine). Default: INFERLINE_URL. */
  baseUrl?: string;
  /** A tenant's API key (sent as `Authorization: Bearer …`, never logged). Default: INFERLINE_API_KEY. */
  apiKey?: string;
  /** Further attempts after a retryable failure (see Transport); default 5. */
  maxRetries?: number;
  /** Milliseconds one attempt may wait for its answer; a long-poll adds the seconds it asks to wait. Default 60,000. */
  timeout?: number;
  /** The longest wait between attempts, a server's Retry-After included (default 30,000). */
  maxRetryDelayMs?: number;
  /** The fetch to use (default the global one: Node 20's undici). */
  fetch?: typeof fetch;
  /** @deprecated Use `maxRetries`. */
  retries?: number;
  /** @deprecated Use `timeout`. */
  timeoutMs?: number;
}

/** ClientOptions with the environment and defaults applied. */
export interface ResolvedClientOptions {
  baseUrl: string;
  apiKey: string;
  maxRetries: number;
  timeout: number;
  maxRetryDelayMs: number;
  fetch: typeof fetch;
}

export const DEFAULT_MAX_RETRIES = 5;
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The settings a client runs with: what was given, else INFERLINE_URL and INFERLINE_API_KEY, else the defaults. */
export function resolveClientOptions(
  options: ClientOptions,
  env: Record<string, string | undefined> = process.env,
): ResolvedClientOptions {
  const baseUrl = options.baseUrl ?? env.INFERLINE_URL;
  const apiKey = options.apiKey ?? env.INFERLINE_API_KEY;
  if (!baseUrl) throw new TypeError("InferlineClient needs a baseUrl (or INFERLINE_URL in the environment)");
  if (!apiKey) throw new TypeError("InferlineClient needs an apiKey (or INFERLINE_API_KEY in the environment)");
  return {
    baseUrl: baseUrl.replace(/\/+$/, ""),
    apiKey,
    maxRetries: Math.max(0, options.maxRetries ?? options.retries ?? DEFAULT_MAX_RETRIES),
    timeout: options.timeout ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRetryDelayMs: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
    fetch: options.fetch ?? globalThis.fetch,
  };
}
