import type { RequestHandler } from "express";
import { LRUCache } from "lru-cache";
import { sendProblem } from "../problem.ts";

/**
 * Request counts per key (a tenant, a client address) in fixed one-second windows, in an LRU of
 * bounded size. When more keys are active than it holds, the least recently seen key loses its
 * count (it starts a fresh window): memory stays bounded, and no one else's count is reset.
 * Hand-written rather than rate-limiter-flexible, which allocates a promise and a result object
 * per request: a visible share of a submit's CPU, where an LRU lookup costs tens of nanoseconds.
 */
export class WindowCounter {
  private readonly windows: LRUCache<string, { second: number; count: number }>;

  constructor(
    readonly perSecond: number,
    maxKeys: number,
  ) {
    this.windows = new LRUCache({ max: maxKeys });
  }

  /** Counts one request of `key`: 0 when it is within the limit, else the Retry-After in seconds. */
  take(key: string, now = Date.now()): number {
    const second = Math.floor(now / 1000);
    let window = this.windows.get(key);
    if (!window || window.second !== second) this.windows.set(key, (window = { second, count: 0 }));
    if (++window.count <= this.perSecond) return 0;
    return Math.max(1, Math.ceil(((second + 1) * 1000 - now) / 1000));
  }

  get size(): number {
    return this.windows.size;
  }
}

/** Keys a per-tenant limiter tracks per process; tenants beyond it only lose their count. */
const MAX_TRACKED_TENANTS = 100_000;

/** Per-tenant request rate (per API process). Over it: 429 with Retry-After. */
export function rateLimit(perSecond: number): RequestHandler {
  if (perSecond <= 0) return (_req, _res, next) => next();
  const counter = new WindowCounter(perSecond, MAX_TRACKED_TENANTS);
  return (req, res, next) => {
    const retryAfter = counter.take(req.tenant?.id ?? req.ip ?? "anonymous");
    if (retryAfter === 0) return next();
    res.setHeader("Retry-After", String(retryAfter));
    sendProblem(res, 429, "rate_limited", `more than ${perSecond} requests per second for this API key`);
  };
}
