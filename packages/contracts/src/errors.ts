/**
 * One hierarchy of errors with stable codes, rooted at InferlineError. Routes map them to RFC 9457
 * problem details (`status`, `code`); processes print their `message` as one line at start-up.
 * An error also carries the retry decision, as inngest-js's do: NonRetriableError fails the work
 * now, RetriableError has it retried with the queue's backoff, RetryAfterError after the delay it
 * names; `retriable` says which side of that line any other InferlineError is on.
 */
export interface FieldFault {
  /** JSON Pointer (RFC 6901) into the request body, e.g. `/inputs/0/shape`. */
  path: string;
  message: string;
}

/** How an InferlineError is answered and retried, besides its code and message. */
export interface InferlineErrorOptions {
  status?: number;
  retriable?: boolean;
  cause?: unknown;
  errors?: FieldFault[];
}

export class InferlineError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  /** The request's fields at fault, when the error is the request's (a problem's `errors`). */
  readonly errors: FieldFault[] | undefined;

  constructor(code: string, message: string, options: InferlineErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.retriable = options.retriable ?? false;
    this.errors = options.errors;
  }
}

export class ValidationError extends InferlineError {
  declare readonly errors: FieldFault[];
  constructor(message: string, errors: FieldFault[], status = 422) {
    super("validation_failed", message, { status, errors });
  }
}

export class NotFoundError extends InferlineError {
  /** `errors`: where the request named the missing thing, when it is a field of it (`/model`). */
  constructor(what: string, id: string, errors?: FieldFault[]) {
    super("not_found", `${what} ${JSON.stringify(id)} was not found`, { status: 404, errors });
  }
}

export class ConflictError extends InferlineError {
  constructor(code: string, message: string) {
    super(code, message, { status: 409 });
  }
}

/** Raised when a dependency is unreachable; `hint` says how to start it. */
export class ServiceUnavailableError extends InferlineError {
  readonly retryAfterSeconds: number | undefined;
  constructor(code: string, message: string, retryAfterSeconds?: number, cause?: unknown) {
    super(code, message, { status: 503, retriable: true, cause });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * This process has more work in flight than it can serve promptly (requests at the door, or a
 * wait for a database connection past its bound): refused at once, before any more work is
 * spent on it, so that the work already admitted finishes and the backlog drains.
 */
export class OverloadedError extends ServiceUnavailableError {
  constructor(message: string, retryAfterSeconds = 1, cause?: unknown) {
    super("overloaded", message, retryAfterSeconds, cause);
  }
}

/** A failure that retrying cannot fix (bad input, a model that rejects it). Fails the job at once. */
export class NonRetriableError extends InferlineError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { status: 422, retriable: false, cause });
  }
}

/** A failure worth retrying later, with the queue's backoff (a lost connection, an overloaded dependency). */
export class RetriableError extends InferlineError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { status: 503, retriable: true, cause });
  }
}

/** A failure worth retrying after `retryAfterMs` exactly (the schedule, or the other side, named the delay). */
export class RetryAfterError extends RetriableError {
  constructor(
    code: string,
    message: string,
    readonly retryAfterMs: number,
    cause?: unknown,
  ) {
    super(code, message, cause);
  }
}

/** A bad setting (an environment variable, a manifest): the process cannot start; `message` names it. */
export class ConfigError extends InferlineError {
  constructor(message: string, cause?: unknown) {
    super("invalid_config", message, { cause });
  }
}

/** A list cursor this API did not hand out. */
export class InvalidCursorError extends InferlineError {
  constructor(message = "cursor is not one this API returned") {
    super("invalid_cursor", message, { status: 400, errors: [{ path: "/query/cursor", message }] });
  }
}

/**
 * The failures of a run that its input caused: the same input fails the same model file the same
 * way, so the followers of a single flight (identical requests waiting on one run) share their
 * leader's failure rather than running it again. `inference_timeout` and `inference_crashed` are
 * final only after JOB_ATTEMPTS runs, the later ones each alone in a session run of its own: by
 * then the input is what hangs or kills the model, and each follower would pay as many runs to
 * fail the same way. Every other failure says nothing about the input (`retries_exhausted`: the
 * workers running it died or a dependency kept failing; `inference_unavailable`;
 * `model_not_served`): followers then run on their own, as when their leader is canceled.
 */
export const INPUT_FAULT_CODES: ReadonlySet<string> = new Set([
  "inference_error",
  "invalid_input",
  "result_too_large",
  "inference_timeout",
  "inference_crashed",
]);

/** Whether a failed job's `code` is its input's fault (see INPUT_FAULT_CODES). */
export function isInputFault(code: string): boolean {
  return INPUT_FAULT_CODES.has(code);
}
