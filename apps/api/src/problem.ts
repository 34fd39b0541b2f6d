import type { ErrorRequestHandler, Response } from "express";
import { z } from "zod";
import { InferlineError, ServiceUnavailableError, ValidationError, type FieldFault } from "@inferline/contracts";
import { InvalidCursorError } from "@inferline/db";
import type { Logger } from "pino";

/** An RFC 9457 problem details body. `code` is our stable machine-readable name. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldFault[];
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function sendProblem(res: Response, status: number, code: string, detail: string, errors?: FieldFault[]): void {
  const body: Problem = { type: `https://inferline.dev/problems/${code.replaceAll("_", "-")}`, title: TITLES[status] ?? "Error", status, detail, code };
  if (errors) body.errors = errors;
  res.status(status).type("application/problem+json").send(JSON.stringify(body));
}

/** zod issues as JSON Pointers into the request body. */
export function zodFaults(error: z.ZodError, base = ""): FieldFault[] {
  return error.issues.map((i) => ({ path: `${base}/${i.path.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/")}`, message: i.message }));
}

/** Maps known errors to problem details; anything else is a 500 whose detail hides internals. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === "entity.too.large") return sendProblem(res, 413, "body_too_large", `request body exceeds the limit of this route`);
    if (e.type === "entity.parse.failed") return sendProblem(res, 400, "malformed_json", `request body is not valid JSON: ${e.message}`);
    if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") return sendProblem(res, 415, "unsupported_encoding", e.message ?? "");
    if (err instanceof z.ZodError) return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(err));
    if (err instanceof InvalidCursorError) return sendProblem(res, 400, err.code, err.message);
    if (err instanceof ValidationError) return sendProblem(res, err.status, err.code, err.message, err.errors);
    if (err instanceof ServiceUnavailableError) {
      if (err.retryAfterSeconds) res.setHeader("Retry-After", String(err.retryAfterSeconds));
      return sendProblem(res, 503, err.code, err.message);
    }
    if (err instanceof InferlineError && err.status < 500) return sendProblem(res, err.status, err.code, err.message);
    logger.error({ err, path: req.path }, "unhandled error");
    sendProblem(res, 500, "internal_error", "an unexpected error occurred; it has been logged");
  };
}
