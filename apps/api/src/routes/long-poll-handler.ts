import type { RequestHandler } from "express";
import { WaitQuery } from "@inferline/contracts";
import { sendProblem, zodFaults } from "../problem.ts";

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
    res.json(await wait(req.tenant!.id, req.params.id, query.data.wait ?? 0, abort.signal));
  };
}
