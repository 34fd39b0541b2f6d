import type { RequestHandler, Response } from "express";
import { WaitQuery } from "@inferline/contracts";
import { sendProblem, zodFaults } from "../problem.ts";
import type { WaiterLimit } from "../services/long-poll.ts";

/** A slot frees as soon as any of the tenant's waits ends, so clients may retry soon. */
const RETRY_AFTER_SECONDS = 1;

/**
 * `GET /:id[?wait=N]` for anything that can be long-polled: validates `wait`, and aborts the wait
 * when the client goes away.
 */
export function longPollHandler<T>(
  wait: (tenantId: string, id: string, seconds: number, signal: AbortSignal) => Promise<T>,
): RequestHandler<{ id: string }> {
  return async (req, res) => {
    const query = WaitQuery.safeParse(req.query);
    if (!query.success)
      return sendProblem(
        res,
        422,
        "validation_failed",
        "wait must be a number of seconds from 0 to 60",
        zodFaults(query.error, "/query"),
      );
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    if (res.closed) abort.abort(); // gone while authenticating: 'close' has been and gone
    // A wait holds no connection and little memory, and has its own cap (WaiterLimit): it leaves the door's count.
    if ((query.data.wait ?? 0) > 0) req.leaveAdmission?.();
    res.json(await wait(req.tenant!.id, req.params.id, query.data.wait ?? 0, abort.signal));
  };
}

/**
 * Takes one of the tenant's waiter slots for a request that asks to wait (`wait` > 0; a request
 * without a valid wait passes uncounted, and the handler answers it), or answers 429
 * `too_many_waiters`. The slot is released when the response closes: answered, failed or
 * abandoned by the client alike.
 */
export function longPollAdmission(limit: WaiterLimit): RequestHandler {
  return (req, res, next) => {
    if (!(Number(req.query.wait) > 0)) return next();
    if (holdWaiterSlot(limit, req.tenant!.id, res)) next();
  };
}

/**
 * Holds a slot until `res` closes and returns true; or answers the 429 and returns false; or,
 * when the client has already gone (its 'close' came before this listener could), returns false.
 */
export function holdWaiterSlot(limit: WaiterLimit, tenantId: string, res: Response): boolean {
  if (res.closed) return false;
  const release = limit.tryAcquire(tenantId);
  if (!release) {
    res.setHeader("Retry-After", String(RETRY_AFTER_SECONDS));
    sendProblem(
      res,
      429,
      "too_many_waiters",
      `your tenant already has ${limit.maxPerTenant} long-polls waiting on this API process; retry later, or read without wait`,
    );
    return false;
  }
  res.once("close", release);
  return true;
}
