import type { RequestHandler } from "express";
import type { Tenant, TenantStore } from "@inferline/db";
import { sendProblem } from "../problem.ts";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `authenticate` on every /v1 route. */
      tenant?: Tenant;
    }
  }
}

const CACHE_MS = 30_000;

/**
 * Bearer-key authentication. Lookups are cached for 30 s so the hot submit path costs no extra
 * database round trip; a revoked key therefore stops working within 30 s.
 */
export function authenticate(tenants: TenantStore): RequestHandler {
  const cache = new Map<string, { tenant: Tenant | null; until: number }>();
  return async (req, res, next) => {
    const header = req.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return sendProblem(res, 401, "missing_api_key", "send your API key as `Authorization: Bearer <key>`");
    const key = match[1]!;
    let hit = cache.get(key);
    if (!hit || hit.until < Date.now()) {
      hit = { tenant: await tenants.authenticate(key), until: Date.now() + CACHE_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, hit);
    }
    if (!hit.tenant) return sendProblem(res, 401, "invalid_api_key", "the API key is unknown or revoked");
    req.tenant = hit.tenant;
    next();
  };
}
