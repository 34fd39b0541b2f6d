import type { Request, RequestHandler, Response } from "express";
import { DRAFT_IDLE_TIMEOUT_MS } from "@inferline/db";
import { sendProblem } from "../problem.ts";
import type { TenantSlots } from "../services/tenant-slots.ts";
import { admitWithSlot, type SlotProblems } from "./slot-admission.ts";

/** Seconds a refused upload is told to wait: about what a large upload takes. */
const RETRY_AFTER_S = 5;

const UPLOAD_PROBLEMS: SlotProblems = {
  retryAfterSeconds: RETRY_AFTER_S,
  tenant: {
    code: "too_many_batch_uploads",
    detail: (n) =>
      `this tenant already has ${n} batch uploads in progress on this server; retry after ${RETRY_AFTER_S} s`,
  },
  process: {
    code: "batch_uploads_busy",
    detail: (n) => `this server already has ${n} batch uploads in progress; retry after ${RETRY_AFTER_S} s`,
  },
  beforeRefusal: closeUnread,
};

/**
 * Takes a batch-creation slot before the body is read (put it before any body parser): over the
 * tenant's cap 429 `too_many_batch_uploads`, over the process's cap 503 `batch_uploads_busy`,
 * both with Retry-After. The slot is held by the exchange until its response closes (answered,
 * or the client gone) and by the handler while it runs (see slotLease), whichever ends last. A
 * body that stops arriving for `bodyIdleMs` (default DRAFT_IDLE_TIMEOUT_MS, 30 s) is answered 408
 * `upload_stalled` and its slot freed.
 */
export function admitBatchUpload(slots: TenantSlots, bodyIdleMs = DRAFT_IDLE_TIMEOUT_MS): RequestHandler {
  return admitWithSlot(slots, UPLOAD_PROBLEMS, (req, res) => guardStall(req, res, bodyIdleMs));
}

/**
 * A client that stops sending mid-body would hold its slot (and, for NDJSON, the batch's open
 * transaction) until the server's requestTimeout; after `idleMs` without a byte it is answered
 * 408 and the connection closed, which ends the read and rolls the create back.
 */
function guardStall(req: Request, res: Response, idleMs: number): void {
  if (req.complete) return;
  req.setTimeout(idleMs, () => {
    if (res.headersSent) return void req.socket.destroy();
    res.setHeader("Connection", "close");
    sendProblem(
      res,
      408,
      "upload_stalled",
      `the request body stopped arriving for more than ${idleMs / 1000} s; nothing was created`,
    );
  });
  // Once the body is in, the create may take its time (nothing more is read from the socket).
  req.once("end", () => req.setTimeout(0));
}

/**
 * Before answering a request whose body is not read to its end: what still arrives is discarded,
 * and the connection closes after the answer instead of reading up to the body limit of it.
 */
export function closeUnread(req: Request, res: Response): void {
  if (req.readableEnded) return;
  if (!req.complete && !res.headersSent) res.setHeader("Connection", "close");
  req.resume();
}
