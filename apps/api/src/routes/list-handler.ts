import type { RequestHandler } from "express";
import type { z } from "zod";
import { sendProblem, zodFaults } from "../problem.ts";
import { TenantSlots } from "../services/tenant-slots.ts";

/** Lists of one tenant that wait for one of its MAX_LISTS_PER_TENANT slots in an API process, and how long each may. */
export const LIST_WAITING = { perTenant: 32, ms: 10_000 };

/** The slots lists (GET /v1/jobs, GET /v1/batches) take: `perTenant` (MAX_LISTS_PER_TENANT) lists of a tenant at once, more waiting. */
export function listSlots(perTenant: number): TenantSlots {
  // No cap per process: the lists' pool of connections is one, and other tenants never wait here.
  const waiting = { waitingPerTenant: LIST_WAITING.perTenant, waitMs: LIST_WAITING.ms };
  return new TenantSlots({ perProcess: Number.POSITIVE_INFINITY, perTenant, ...waiting });
}

/** Reads one page of a tenant's list. */
type ReadPage<Query> = (tenantId: string, query: Query) => Promise<unknown>;

/**
 * A list route: its query validated (422 naming /query/…), then read in one of the tenant's list
 * slots. A page may read thousands of rows: a tenant's burst of lists takes turns in its own
 * slots, so it holds few of the pool's connections and never makes another tenant's requests wait.
 */
export function listHandler<Query>(
  schema: z.ZodType<Query>,
  lists: TenantSlots,
  read: ReadPage<Query>,
): RequestHandler {
  return async (req, res) => {
    const query = schema.safeParse(req.query);
    if (!query.success)
      return sendProblem(res, 422, "validation_failed", "invalid query parameters", zodFaults(query.error, "/query"));
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const slot = await lists.acquire(req.tenant!.id, gone.signal);
    if (slot === "aborted") return;
    if (slot === "tenant" || slot === "process") {
      res.setHeader("Retry-After", "1");
      const detail = `your tenant already has ${lists.limits.perTenant} lists running and more waiting on this API process`;
      return sendProblem(res, 429, "too_many_lists", `${detail}; retry after 1 s`);
    }
    try {
      res.json(await read(req.tenant!.id, query.data));
    } finally {
      slot.release();
    }
  };
}
