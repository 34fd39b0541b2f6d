import type { ErrorRequestHandler, Response } from "express";
import { z } from "zod";
import {
  InferlineError,
  OverloadedError,
  ServiceUnavailableError,
  ValidationError,
  zodFaults,
  type FieldFault,
} from "@inferline/contracts";
import { isRowFault, postgresFailure } from "@inferline/db";
import { redisFailure } from "@inferline/queue";
import type { Logger } from "pino";
import { CONTENT_ENCODING_FAULT } from "./body-encoding.ts";

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
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function sendProblem(res: Response, status: number, code: string, detail: string, errors?: FieldFault[]): void {
  const body: Problem = {
    type: `https://inferline.dev/problems/${code.replaceAll("_", "-")}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
  };
  if (errors) body.errors = errors;
  res.status(status).type("application/problem+json").send(JSON.stringify(body));
}

/** zod issues as JSON Pointers into the request (unknown keys named by their own path). */
export { zodFaults } from "@inferline/contracts";

/** What a client waits before retrying when a dependency is down: about one PostgreSQL restart. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

const DEPENDENCY_NAMES = { postgres: "PostgreSQL", redis: "Redis" } as const;

/** Which dependency an error says is unavailable, and how (one word), if it says so. */
export function dependencyOutage(
  err: unknown,
): { dependency: keyof typeof DEPENDENCY_NAMES; failure: string } | undefined {
  // Redis first: its errors are recognised by ioredis's own messages, while PostgreSQL's include
  // bare socket errors (ECONNREFUSED), which on the API's request paths only pg produces.
  const redis = redisFailure(err);
  if (redis) return { dependency: "redis", failure: redis };
  const postgres = postgresFailure(err);
  return postgres ? { dependency: "postgres", failure: postgres } : undefined;
}

/**
 * A 503 `dependency_unavailable` with Retry-After, naming the dependency (also as the `dependency`
 * extension member) and its state in one word: never the raw error, which can carry hosts and
 * source excerpts (Prisma's messages).
 */
function sendDependencyProblem(
  res: Response,
  outage: { dependency: keyof typeof DEPENDENCY_NAMES; failure: string },
): void {
  const code = "dependency_unavailable";
  res.setHeader("Retry-After", String(DEPENDENCY_RETRY_AFTER_SECONDS));
  const body = {
    type: `https://inferline.dev/problems/${code.replaceAll("_", "-")}`,
    title: TITLES[503],
    status: 503,
    detail: `${DEPENDENCY_NAMES[outage.dependency]} is unavailable (${outage.failure}); retry after ${DEPENDENCY_RETRY_AFTER_SECONDS} s`,
    code,
    dependency: outage.dependency,
  };
  res.status(503).type("application/problem+json").send(JSON.stringify(body));
}

/**
 * One warn line per dependency per interval during an outage (with how many requests it stood
 * for), rather than one per failed request: under load an outage would otherwise flood the log.
 */
function outageLogger(
  logger: Logger,
  intervalMs = 10_000,
): (outage: { dependency: string; failure: string }, path: string, err: unknown) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (outage, path, err) => {
    const seen = last.get(outage.dependency);
    if (seen && Date.now() - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    last.set(outage.dependency, { at: Date.now(), suppressed: 0 });
    const code = (err as { code?: unknown }).code;
    logger.warn(
      { ...outage, path, code: typeof code === "string" ? code : undefined, suppressed: seen?.suppressed ?? 0 },
      "dependency unavailable; answered 503",
    );
  };
}

/** The pool's OverloadedError, also when a library passed it on in its own (Prisma keeps only its code). */
function overloadInside(err: unknown): ServiceUnavailableError | undefined {
  if (postgresFailure(err) !== "busy") return undefined;
  return err instanceof OverloadedError
    ? err
    : new OverloadedError((err as Error).message.split("\n").at(-1) ?? "overloaded");
}

/** Maps known errors to problem details; anything else is a 500 whose detail hides internals. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  const logOutage = outageLogger(logger);
  return (err, req, res, _next) => {
    // Part of the answer is out already (a results stream): no problem body can follow it, and
    // ending the response normally would pass a cut stream off as whole.
    if (res.headersSent) {
      const outage = dependencyOutage(err);
      if (outage) logOutage(outage, req.path, err);
      else logger.error({ err, path: req.path }, "error after the response started");
      return void res.destroy();
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === "entity.too.large")
      return sendProblem(res, 413, "body_too_large", `request body exceeds the limit of this route`);
    if (e.type === "entity.parse.failed")
      return sendProblem(res, 400, "malformed_json", `request body is not valid JSON: ${e.message}`);
    if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") {
      const detail = e.message ?? "";
      const header =
        e.type === "charset.unsupported" ? { path: "/headers/content-type", message: detail } : CONTENT_ENCODING_FAULT;
      return sendProblem(res, 415, "unsupported_encoding", detail, [header]);
    }
    // Any other client error of the body parser (a body that does not inflate, a wrong length):
    // its own 4xx, never a 500.
    if (
      (err as { expose?: boolean }).expose === true &&
      typeof e.status === "number" &&
      e.status >= 400 &&
      e.status < 500
    ) {
      return sendProblem(
        res,
        e.status,
        "malformed_body",
        `the request body could not be read: ${e.message ?? "bad request"}`,
      );
    }
    // The router could not percent-decode a path parameter ("/v1/jobs/%zz").
    if (err instanceof URIError)
      return sendProblem(res, 400, "malformed_path", "the request path holds a malformed percent-encoding");
    if (err instanceof z.ZodError)
      return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(err));
    if (err instanceof ValidationError) return sendProblem(res, err.status, err.code, err.message, err.errors);
    const unavailable = err instanceof ServiceUnavailableError ? err : overloadInside(err);
    if (unavailable) {
      res.setHeader("Retry-After", String(unavailable.retryAfterSeconds ?? DEPENDENCY_RETRY_AFTER_SECONDS));
      return sendProblem(res, 503, unavailable.code, unavailable.message);
    }
    const outage = dependencyOutage(err);
    if (outage) {
      logOutage(outage, req.path, err);
      return sendDependencyProblem(res, outage);
    }
    if (err instanceof InferlineError && err.status < 500) {
      // A refusal that waiting cures (quota_exceeded) says how long to wait.
      const retryAfter = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (typeof retryAfter === "number") res.setHeader("Retry-After", String(retryAfter));
      return sendProblem(res, err.status, err.code, err.message, err.errors);
    }
    // Validation refuses what PostgreSQL cannot store; should a value slip through, it fails
    // only its own request (see SubmitWriter), and as the client's fault, not ours.
    if (isRowFault(err) && (err as { code: string }).code.startsWith("22"))
      return sendProblem(res, 422, "unstorable_value", "the request holds a value the database cannot store");
    logger.error({ err, path: req.path }, "unhandled error");
    sendProblem(res, 500, "internal_error", "an unexpected error occurred; it has been logged");
  };
}
