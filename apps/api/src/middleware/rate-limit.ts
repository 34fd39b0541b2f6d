import type { RequestHandler } from "express";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { sendProblem } from "../problem.ts";

/** Per-tenant request rate (per API process). Over it: 429 with Retry-After. */
export function rateLimit(perSecond: number): RequestHandler {
  if (perSecond <= 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterMemory({ points: perSecond, duration: 1 });
  return (req, res, next) => {
    limiter.consume(req.tenant?.id ?? req.ip ?? "anonymous").then(
      () => next(),
      (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) return next(rejection);
        res.setHeader("Retry-After", String(Math.max(1, Math.ceil(rejection.msBeforeNext / 1000))));
        sendProblem(res, 429, "rate_limited", `more than ${perSecond} requests per second for this API key`);
      },
    );
  };
}
