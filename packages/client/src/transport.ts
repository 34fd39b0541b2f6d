import { setTimeout as delay } from "node:timers/promises";
import { DEFAULT_MAX_RETRY_DELAY_MS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type ClientOptions } from "./client-options.ts";
import { InferlineConnectionError } from "./connection-error.ts";
import { InferlineError } from "./inferline-error.ts";
import { isNetworkError, isRetryableStatus, retryAfterMs, retryDelayMs } from "./retry-policy.ts";

export type Query = Record<string, string | number | undefined>;

/** One API request, as the resource classes describe it. */
export interface RequestSpec {
  method: "GET" | "POST";
  path: string;
  query?: Query;
  /** A JSON body (replayable). */
  json?: unknown;
  /** A raw body; a stream is sent once, never replayed. */
  body?: string | ReadableStream<Uint8Array>;
  contentType?: string;
  headers?: Record<string, string>;
  /** Seconds the server may hold the request (a long-poll's `wait`), added to the timeout. */
  holdSeconds?: number;
  signal?: AbortSignal | undefined;
}

/**
 * Sends requests with the key, a timeout per attempt and the retry policy: network errors,
 * timeouts, 429 and 503 are tried again (after the server's Retry-After, else jittered backoff)
 * when the request can be replayed, which every one can except a streamed body. Any other non-2xx
 * answer throws InferlineError at once.
 */
export class Transport {
  readonly baseUrl: string;
  private readonly retries: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.retries = Math.max(0, options.retries ?? DEFAULT_RETRIES);
    this.maxDelayMs = options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** The 2xx answer's JSON body. */
  json<T>(spec: RequestSpec): Promise<T> {
    return this.send(spec, (res) => res.json() as Promise<T>);
  }

  /** The 2xx answer itself, its body unread (for streams: the timeout ends with the headers). */
  response(spec: RequestSpec): Promise<Response> {
    return this.send(spec, async (res) => res);
  }

  private async send<T>(spec: RequestSpec, read: (res: Response) => Promise<T>): Promise<T> {
    const replayable = !(spec.body instanceof ReadableStream);
    for (let attempt = 0; ; attempt++) {
      const mayRetry = replayable && attempt < this.retries;
      const timer = new AbortController();
      const timeout = setTimeout(() => timer.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs + (spec.holdSeconds ?? 0) * 1000);
      const signal = spec.signal ? AbortSignal.any([spec.signal, timer.signal]) : timer.signal;
      let waitMs: number;
      try {
        const res = await this.fetch(this.url(spec), this.init(spec, signal));
        if (res.ok) return await read(res);
        const serverMs = retryAfterMs(res.headers.get("retry-after"));
        if (!mayRetry || !isRetryableStatus(res.status)) throw await InferlineError.fromResponse(res, serverMs === undefined ? undefined : serverMs / 1000);
        await res.body?.cancel();
        waitMs = retryDelayMs(attempt, this.maxDelayMs, serverMs);
      } catch (err) {
        if (err instanceof InferlineError || spec.signal?.aborted) throw err;
        const timedOut = timer.signal.aborted;
        // fetch fails with a TypeError (the socket error as its cause); anything else (a body that is not JSON) is no connection problem.
        if (!timedOut && !(err instanceof TypeError) && !isNetworkError(err)) throw err;
        const cause: unknown = timedOut ? timer.signal.reason : err;
        if (!mayRetry || !(timedOut || isNetworkError(err)))
          throw new InferlineConnectionError(`${spec.method} ${this.baseUrl}${spec.path}: ${describe(cause)}${attempt ? ` (after ${attempt + 1} attempts)` : ""}`, attempt + 1, { cause });
        waitMs = retryDelayMs(attempt, this.maxDelayMs);
      } finally {
        clearTimeout(timeout);
      }
      await delay(waitMs, undefined, spec.signal ? { signal: spec.signal } : {});
    }
  }

  private url(spec: RequestSpec): string {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) query.set(k, String(v));
    const search = query.size ? `?${query.toString()}` : "";
    return `${this.baseUrl}${spec.path}${search}`;
  }

  private init(spec: RequestSpec, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}`, accept: "application/json", ...spec.headers };
    let body: RequestInit["body"];
    if (spec.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(spec.json);
    } else if (spec.body !== undefined) {
      if (spec.contentType) headers["content-type"] = spec.contentType;
      body = spec.body;
    }
    // A stream body needs half duplex (undici's rule); `duplex` is not in every RequestInit typing.
    const duplex = spec.body instanceof ReadableStream ? { duplex: "half" } : {};
    return { method: spec.method, headers, signal, ...(body !== undefined ? { body } : {}), ...duplex } as RequestInit;
  }
}

/** The most telling message of an error chain: `connect ECONNREFUSED 127.0.0.1:1` rather than `fetch failed`. */
function describe(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause && typeof (e.cause as { message?: unknown }).message === "string") e = e.cause;
  return e?.message ?? String(err);
}
