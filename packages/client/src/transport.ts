import { setTimeout as delay } from "node:timers/promises";
import { ConnectionError, InferlineAPIError, TimeoutError } from "./api-error.ts";
import type { ResolvedClientOptions } from "./client-options.ts";
import { isNetworkError, isRetryableStatus, retryAfterMs, retryDelayMs } from "./retry-policy.ts";
import type { RequestOptions } from "./types.ts";
import { VERSION } from "./version.ts";

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
  /** The caller's timeout, retries and signal for this call. */
  options?: RequestOptions | undefined;
}

const USER_AGENT = `inferline-node/${VERSION}`;

/**
 * Sends requests with the key, a timeout per attempt and the retry policy. A request is tried
 * again (after the server's Retry-After, else jittered backoff) when it can be replayed, which
 * every one can except a streamed body, and: it was answered 429 or 503 (nothing was done); or it
 * is idempotent (a GET, or a create with an Idempotency-Key) and got no answer, or 408, 502 or
 * 504. Any other non-2xx answer throws its InferlineAPIError subclass at once.
 */
export class Transport {
  constructor(private readonly options: ResolvedClientOptions) {}

  get baseUrl(): string {
    return this.options.baseUrl;
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
    const idempotent = spec.method === "GET" || spec.headers?.["idempotency-key"] !== undefined;
    const maxRetries = Math.max(0, spec.options?.maxRetries ?? this.options.maxRetries);
    const timeoutMs = (spec.options?.timeout ?? this.options.timeout) + (spec.holdSeconds ?? 0) * 1000;
    const signal = spec.options?.signal;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      const mayRetry = replayable && attempt < maxRetries;
      const timer = new AbortController();
      const timeout = setTimeout(() => timer.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const attemptSignal = signal ? AbortSignal.any([signal, timer.signal]) : timer.signal;
      const origin = { attempts: attempt + 1 };
      let waitMs: number;
      try {
        const res = await this.options.fetch(this.url(spec), this.init(spec, attemptSignal));
        if (res.ok) return await read(res);
        const serverMs = retryAfterMs(res.headers.get("retry-after"));
        if (!mayRetry || !isRetryableStatus(res.status, idempotent)) {
          const retryAfter = serverMs === undefined ? {} : { retryAfterSeconds: serverMs / 1000 };
          throw await InferlineAPIError.fromResponse(res, { ...origin, ...retryAfter });
        }
        await res.body?.cancel();
        waitMs = retryDelayMs(attempt, this.options.maxRetryDelayMs, serverMs);
      } catch (err) {
        if (err instanceof InferlineAPIError || signal?.aborted) throw err;
        const timedOut = timer.signal.aborted;
        // fetch fails with a TypeError (the socket error as its cause); anything else (a body that is not JSON) is no connection problem.
        if (!timedOut && !(err instanceof TypeError) && !isNetworkError(err)) throw err;
        if (!mayRetry || !idempotent || !(timedOut || isNetworkError(err))) {
          throw this.noAnswer(spec, timedOut ? timer.signal.reason : err, timedOut, origin.attempts);
        }
        waitMs = retryDelayMs(attempt, this.options.maxRetryDelayMs);
      } finally {
        clearTimeout(timeout);
      }
      await delay(waitMs, undefined, signal ? { signal } : {}).catch((err: unknown) => {
        throw signal?.aborted ? signal.reason : err;
      });
    }
  }

  private noAnswer(spec: RequestSpec, cause: unknown, timedOut: boolean, attempts: number): ConnectionError {
    const message = `${spec.method} ${this.baseUrl}${spec.path}: ${describe(cause)}${attempts > 1 ? ` (after ${attempts} attempts)` : ""}`;
    return timedOut
      ? new TimeoutError(message, { attempts, cause })
      : new ConnectionError(message, { attempts, cause });
  }

  private url(spec: RequestSpec): string {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) query.set(k, String(v));
    const search = query.size ? `?${query.toString()}` : "";
    return `${this.baseUrl}${spec.path}${search}`;
  }

  private init(spec: RequestSpec, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      accept: "application/json",
      "user-agent": USER_AGENT,
      ...spec.headers,
    };
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
