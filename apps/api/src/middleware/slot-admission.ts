import type { Request, RequestHandler, Response } from "express";
import { sendProblem } from "../problem.ts";
import { SlotLease, type SlotRefusal, type TenantSlots } from "../services/tenant-slots.ts";

const LEASE = "slotLease";

/** How a refusal is answered: its code and detail by the cap that refused, and the Retry-After. */
export interface SlotProblems {
  retryAfterSeconds: number;
  /** 429, over the tenant's cap. */
  tenant: { code: string; detail: (limit: number) => string };
  /** 503, over the process's cap. */
  process: { code: string; detail: (limit: number) => string };
  /** Before the refusal is sent (a body not read yet is discarded). */
  beforeRefusal?: (req: Request, res: Response) => void;
}

/** What runs once a request has its slot, before its handler. */
type Admitted = (req: Request, res: Response) => void;

/**
 * Takes one of `slots` before the handler runs: over the tenant's cap 429, over the process's cap
 * 503, both with Retry-After. The slot is held by the exchange until its response closes
 * (answered, or the client gone) and by whoever else holds the lease (see slotLease), whichever
 * ends last. `admitted` runs once a slot is taken, before the handler.
 */
export function admitWithSlot(slots: TenantSlots, problems: SlotProblems, admitted?: Admitted): RequestHandler {
  return async (req, res, next) => {
    const gone = new AbortController();
    let lease: SlotLease | undefined;
    res.once("close", () => {
      gone.abort();
      lease?.release();
    });
    const answer = await slots.acquire(req.tenant!.id, gone.signal);
    if (answer === "aborted") return;
    if (answer instanceof SlotLease) {
      if (gone.signal.aborted) return answer.release();
      lease = answer;
      res.locals[LEASE] = answer;
      admitted?.(req, res);
      return next();
    }
    problems.beforeRefusal?.(req, res);
    refuse(res, answer, slots, problems);
  };
}

function refuse(res: Response, refusal: SlotRefusal, slots: TenantSlots, problems: SlotProblems): void {
  res.setHeader("Retry-After", String(problems.retryAfterSeconds));
  if (refusal === "tenant")
    return sendProblem(res, 429, problems.tenant.code, problems.tenant.detail(slots.limits.perTenant));
  sendProblem(res, 503, problems.process.code, problems.process.detail(slots.limits.perProcess));
}

/** The slot admitWithSlot took for this request, if any. */
export function slotLease(res: Response): SlotLease | undefined {
  const lease: unknown = res.locals[LEASE];
  return lease instanceof SlotLease ? lease : undefined;
}
