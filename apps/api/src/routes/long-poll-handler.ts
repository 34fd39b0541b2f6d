import type { RequestHandler, Response } from "express";
import { WaitQuery } from "@inferline/contracts";
import { sendProblem, zodFaults } from "../problem.ts";
import { holdTenantSlot, type CapRefusal } from "../middleware/tenant-cap.ts";
import type { WaiterLimit } from "../services/long-poll.ts";

/**
 * `GET /:id[?wait=N]` for anything that can be long-polled: validates `wait`, and aborts the wait
 * when the client goes away.
 */
export function longPollHandler<T>(wait: (tenantId: string, id: string, seconds: number, signal: AbortSignal) => Promise<T>): RequestHandler<{ id: string }> {
  return async (req, res) => {
    const query = WaitQuery.safeParse(req.query);
    if (!query.success) return sendProblem(res, 422, "validation_failed", "wait must be a number of seconds from 0 to 60", zodFaults(query.error, "/query"));
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

/** Holds one of the tenant's waiter slots until `res` closes (see holdTenantSlot). */
export function holdWaiterSlot(limit: WaiterLimit, tenantId: string, res: Response): boolean {
  return holdTenantSlot(limit, tenantId, res, TOO_MANY_WAITERS);
}

const TOO_MANY_WAITERS: CapRefusal = {
  code: "too_many_waiters",
  detail: (max) => `your tenant already has ${max} long-polls waiting on this API process; retry later, or read without wait`,
};
