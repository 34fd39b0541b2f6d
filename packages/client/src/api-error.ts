import type { FieldFault } from "./types.ts";

/** What the API answers errors with: an RFC 9457 problem body. */
interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: FieldFault[];
}

/** Where an error came from: the answer (absent when there was none) and how many attempts it took. */
export interface ErrorOrigin {
  status?: number;
  problem?: ProblemBody;
  retryAfterSeconds?: number;
  attempts: number;
  cause?: unknown;
}

/**
 * A request to the API failed. Subclasses say how: the API refused it (its `status`, the problem's
 * stable `code`, `detail` and, for bad input, `errors` naming each field by JSON Pointer such as
 * `/inputs/0/shape`), or no answer came (ConnectionError, TimeoutError: `status` undefined).
 * A status no subclass names (500, 408…) is this class itself. `attempts` counts the tries made:
 * the client had already retried what it could.
 */
export class InferlineAPIError extends Error {
  override readonly name: string = "InferlineAPIError";
  readonly status: number | undefined;
  readonly code: string;
  readonly detail: string;
  readonly errors: FieldFault[];
  readonly type: string | undefined;
  /** The answer's Retry-After, in seconds, when it gave one. */
  readonly retryAfterSeconds: number | undefined;
  readonly attempts: number;

  constructor(message: string, code: string, origin: ErrorOrigin) {
    super(message, origin.cause === undefined ? {} : { cause: origin.cause });
    const problem = origin.problem ?? {};
    this.status = origin.status;
    this.code = code;
    this.detail = typeof problem.detail === "string" ? problem.detail : (problem.title ?? "");
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.type = problem.type;
    this.retryAfterSeconds = origin.retryAfterSeconds;
    this.attempts = origin.attempts;
  }

  /** Whether trying again later could succeed: no answer, a rate limit, or a service not available now. */
  get retryable(): boolean {
    return (
      this.status === undefined ||
      this.status === 429 ||
      this.status === 502 ||
      this.status === 503 ||
      this.status === 504
    );
  }

  /** The error for a refused request: problem+json read when it is one, else the body's text as the detail. */
  static async fromResponse(
    res: Response,
    origin: Omit<ErrorOrigin, "status" | "problem">,
  ): Promise<InferlineAPIError> {
    const text = await res.text().catch(() => "");
    let problem: ProblemBody = { detail: text.slice(0, 500) };
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object") problem = parsed;
    } catch {
      // not JSON (a proxy's error page): the text stands as the detail
    }
    const code = typeof problem.code === "string" ? problem.code : `http_${res.status}`;
    const detail = typeof problem.detail === "string" ? problem.detail : (problem.title ?? "");
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    const faults = errors.length ? ` (${errors.map((e) => `${e.path}: ${e.message}`).join("; ")})` : "";
    const Kind = ERROR_BY_STATUS[res.status] ?? InferlineAPIError;
    return new Kind(`${res.status} ${code}: ${detail}${faults}`, code, { ...origin, status: res.status, problem });
  }
}

/** 401 or 403: the API key is missing, unknown, revoked, or may not do this. */
export class AuthenticationError extends InferlineAPIError {
  override readonly name = "AuthenticationError";
}

/** 404: no such job, batch or model for this tenant (another tenant's answers this too). */
export class NotFoundError extends InferlineAPIError {
  override readonly name = "NotFoundError";
}

/** 409: the request conflicts with the state (a terminal job canceled, an Idempotency-Key reused with another body). */
export class ConflictError extends InferlineAPIError {
  override readonly name = "ConflictError";
}

/** 400, 413, 415 or 422: the request is invalid; `errors` names each faulty field by JSON Pointer. Sending it again will not help. */
export class ValidationError extends InferlineAPIError {
  override readonly name = "ValidationError";
}

/** 429: over the key's rate, the tenant's quota or one of its concurrency limits; `retryAfterSeconds` says when to come back. */
export class RateLimitError extends InferlineAPIError {
  override readonly name = "RateLimitError";
}

/** 502, 503 or 504: the API or a dependency is not available now (a full queue, PostgreSQL or Redis down, a gateway). */
export class UnavailableError extends InferlineAPIError {
  override readonly name = "UnavailableError";
}

/**
 * No answer: the connection failed or was reset, and the retries (for requests that can be sent
 * again) got none either. A streamed batch is never sent twice, so whether it was created is
 * unknown: send the same items with the same Idempotency-Key to get it back if it was.
 */
export class ConnectionError extends InferlineAPIError {
  override readonly name: string = "ConnectionError";

  constructor(message: string, origin: Omit<ErrorOrigin, "status" | "problem">, code = "connection_error") {
    super(message, code, origin);
  }
}

/** No answer within the request's `timeout` (per attempt), on the last attempt. */
export class TimeoutError extends ConnectionError {
  override readonly name = "TimeoutError";

  constructor(message: string, origin: Omit<ErrorOrigin, "status" | "problem">) {
    super(message, origin, "timeout");
  }
}

type ErrorKind = new (message: string, code: string, origin: ErrorOrigin) => InferlineAPIError;

const ERROR_BY_STATUS: Partial<Record<number, ErrorKind>> = {
  400: ValidationError,
  401: AuthenticationError,
  403: AuthenticationError,
  404: NotFoundError,
  409: ConflictError,
  413: ValidationError,
  415: ValidationError,
  422: ValidationError,
  429: RateLimitError,
  502: UnavailableError,
  503: UnavailableError,
  504: UnavailableError,
};
