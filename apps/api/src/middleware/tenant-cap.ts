import type { RequestHandler, Response } from "express";
import { sendProblem } from "../problem.ts";
import type { WaiterLimit } from "../services/long-poll.ts";

/** A slot frees as soon as any of the tenant's requests of that kind ends, so clients may retry soon. */
const RETRY_AFTER_SECONDS = 1;

/** What a refusal says: its stable code, and its detail given the cap. */
export interface CapRefusal {
  code: string;
  detail(max: number): string;
}

/**
 * Holds one of the tenant's slots until `res` closes and returns true; or answers 429 with
 * Retry-After and returns false; or, when the client has already gone (its 'close' came before
 * this listener could), returns false.
 */
export function holdTenantSlot(limit: WaiterLimit, tenantId: string, res: Response, refusal: CapRefusal): boolean {
  if (res.closed) return false;
  const release = limit.tryAcquire(tenantId);
  if (!release) {
    res.setHeader("Retry-After", String(RETRY_AFTER_SECONDS));
    sendProblem(res, 429, refusal.code, refusal.detail(limit.maxPerTenant));
    return false;
  }
  res.once("close", release);
  return true;
}

/** Middleware: at most `limit.maxPerTenant` such requests of one tenant in progress in this process. */
export function tenantCap(limit: WaiterLimit, refusal: CapRefusal): RequestHandler {
  return (req, res, next) => {
    if (holdTenantSlot(limit, req.tenant!.id, res, refusal)) next();
  };
}

/** Lists scan the tenant's rows: a tenant that sends many at once waits its turn, not everyone else. */
export const TOO_MANY_LISTS: CapRefusal = {
  code: "too_many_lists",
  detail: (max) => `your tenant already has ${max} list requests in progress on this API process; retry in a second`,
};
