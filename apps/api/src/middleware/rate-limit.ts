import type { RequestHandler } from "express";
import { sendProblem } from "../problem.ts";

/**
 * Per-tenant request rate (per API process), in fixed one-second windows. Over it: 429 with
 * Retry-After. Hand-written rather than rate-limiter-flexible: its promise and result object per
 * request were about 7% of a submit's CPU in the bench, and a counter per tenant is all this needs.
 */
export function rateLimit(perSecond: number): RequestHandler {
  if (perSecond <= 0) return (_req, _res, next) => next();
  const windows = new Map<string, { second: number; count: number }>();
  return (req, res, next) => {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const key = req.tenant?.id ?? req.ip ?? "anonymous";
    let window = windows.get(key);
    if (!window || window.second !== second) {
      if (windows.size > 100_000) windows.clear();
      windows.set(key, (window = { second, count: 0 }));
    }
    if (++window.count <= perSecond) return next();
    res.setHeader("Retry-After", String(Math.max(1, Math.ceil(((second + 1) * 1000 - now) / 1000))));
    sendProblem(res, 429, "rate_limited", `more than ${perSecond} requests per second for this API key`);
  };
}
