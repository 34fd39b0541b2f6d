import type { RequestHandler, Response } from "express";
import type { TenantSlots } from "../services/tenant-slots.ts";
import { admitWithSlot, type SlotProblems } from "../middleware/slot-admission.ts";

/** Seconds a refused stream is told to wait: about what reading a large batch's results takes. */
const RETRY_AFTER_S = 5;

const STREAM_PROBLEMS: SlotProblems = {
  retryAfterSeconds: RETRY_AFTER_S,
  tenant: {
    code: "too_many_result_streams",
    detail: (n) =>
      `this tenant already reads ${n} batch results streams on this server; retry after ${RETRY_AFTER_S} s`,
  },
  process: {
    code: "result_streams_busy",
    detail: (n) => `this server already writes ${n} batch results streams; retry after ${RETRY_AFTER_S} s`,
  },
};

/** A results-stream slot, held until the response closes; past the caps 429 / 503 (see STREAM_PROBLEMS). */
export function admitResultStream(slots: TenantSlots): RequestHandler {
  return admitWithSlot(slots, STREAM_PROBLEMS);
}

/** How a stream ended: written whole, its client gone, or closed because its client stopped reading. */
export type StreamEnd = "ended" | "gone" | "stalled";

/**
 * Writes `pages` to `res` one at a time: after a write the socket's buffer cannot take whole, the
 * next page is read only once it drains, so a stream holds about one page whatever the batch. A
 * write that has not drained after `idleMs` (a client that stopped reading) destroys the response,
 * which frees its slot. Leaving early returns the generator: no further page is read.
 */
export async function writePages(res: Response, pages: AsyncGenerator<string>, idleMs: number): Promise<StreamEnd> {
  for await (const page of pages) {
    if (res.closed) return "gone";
    if (res.write(page)) continue;
    const drained = await drainWithin(res, idleMs);
    if (drained === "stalled") res.destroy();
    if (drained !== "drained") return drained;
  }
  if (res.closed) return "gone";
  res.end();
  return "ended";
}

/** Waits for `res` to drain, close, or neither within `ms`. */
function drainWithin(res: Response, ms: number): Promise<"drained" | "gone" | "stalled"> {
  if (res.closed) return Promise.resolve("gone");
  return new Promise((resolve) => {
    const settle = (how: "drained" | "gone" | "stalled") => {
      clearTimeout(timer);
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(how);
    };
    const onDrain = () => settle("drained");
    const onClose = () => settle("gone");
    const timer = setTimeout(() => settle("stalled"), ms);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
