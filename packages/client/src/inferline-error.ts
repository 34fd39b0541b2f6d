import type { FieldFault } from "@inferline/contracts";

/** The RFC 9457 problem body the API answers errors with. */
interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: FieldFault[];
}

/**
 * The API refused a request: `status` and the problem body's stable `code`, `detail` and, for a
 * 422, `errors` naming each field by JSON Pointer (`/inputs/0/shape`). `retryAfterSeconds` is the
 * answer's Retry-After when it gave one; `retryable` says whether waiting could help (429, 503),
 * which the client has then already done as often as its `retries` allow.
 */
export class InferlineError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors: FieldFault[];
  readonly type: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, problem: ProblemBody, retryAfterSeconds?: number) {
    const code = typeof problem.code === "string" ? problem.code : `http_${status}`;
    const detail = typeof problem.detail === "string" ? problem.detail : (problem.title ?? "");
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    const fields = errors.length ? ` (${errors.map((e) => `${e.path}: ${e.message}`).join("; ")})` : "";
    super(`${status} ${code}: ${detail}${fields}`);
    this.name = "InferlineError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = errors;
    this.type = problem.type;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  get retryable(): boolean {
    return this.status === 429 || this.status === 503;
  }

  /** Reads a failed response's body: problem+json when it is one, else its text as the detail. */
  static async fromResponse(res: Response, retryAfterSeconds?: number): Promise<InferlineError> {
    const text = await res.text().catch(() => "");
    let problem: ProblemBody = { detail: text.slice(0, 500) };
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object") problem = parsed;
    } catch {
      // not JSON (a proxy's error page): the text stands as the detail
    }
    return new InferlineError(res.status, problem, retryAfterSeconds);
  }
}
