import { Router, type RequestHandler } from "express";
import { hops, JobListQuery, JobSubmission, type JobListPage, type JobView } from "@inferline/contracts";
import type { JobService } from "../services/job-service.ts";
import { sendProblem, zodFaults } from "../problem.ts";
import { IDEMPOTENCY_KEY_FAULT, IdempotencyKey } from "../services/idempotency.ts";
import { CANCEL_AFTER_FAULT, CANCEL_AFTER_HINT, cancelAfterHeader } from "../services/deadlines.ts";
import { longPollHandler } from "./long-poll-handler.ts";
import { TenantSlots } from "../services/tenant-slots.ts";
import type { ApiMetrics } from "../metrics.ts";

/**
 * POST /v1/jobs's handler. createApp mounts it on the app itself, ahead of every router: the
 * hottest route then passes no router it does not use.
 */
export function submitJobHandler(jobs: JobService, metrics?: Pick<ApiMetrics, "submitted">): RequestHandler {
  return async (req, res) => {
    const arrived = hops.now(); // the bench's hop trace (off: 0); the id is known only after submit
    const parsed = JobSubmission.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(parsed.error));
    const keyHeader = req.header("idempotency-key");
    const key = keyHeader === undefined ? undefined : IdempotencyKey.safeParse(keyHeader);
    if (key && !key.success) {
      return sendProblem(res, 400, "invalid_idempotency_key", IDEMPOTENCY_KEY_FAULT.message, [IDEMPOTENCY_KEY_FAULT]);
    }
    const cancelAfter = cancelAfterHeader(req.header("cancel-after"));
    if (!cancelAfter) return sendProblem(res, 400, "invalid_cancel_after", CANCEL_AFTER_HINT, [CANCEL_AFTER_FAULT]);
    const { job, replayed } = await jobs.submit(req.tenant!, parsed.data, key?.data, cancelAfter.seconds);
    if (!replayed) metrics?.submitted("job", job.model);
    hops.mark(job.id, "api.in", arrived);
    // Written straight to the response: res.json's content-type parsing and res.send's checks
    // cost the hottest route CPU for nothing, since this body is always our own JSON.
    const body = JSON.stringify(job satisfies JobView);
    res.writeHead(replayed ? 200 : 202, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), location: `/v1/jobs/${job.id}` });
    res.end(body);
  };
}

/** Lists of one tenant that wait for one of its MAX_LISTS_PER_TENANT slots in an API process, and how long each may. */
export const LIST_WAITING = { perTenant: 32, ms: 10_000 };

/** The slots GET /v1/jobs takes: `perTenant` (MAX_LISTS_PER_TENANT) lists of a tenant at once, more waiting. */
export function listSlots(perTenant: number): TenantSlots {
  // No cap per process: the lists' pool of connections is one, and other tenants never wait here.
  return new TenantSlots({ perProcess: Number.POSITIVE_INFINITY, perTenant, waitingPerTenant: LIST_WAITING.perTenant, waitMs: LIST_WAITING.ms });
}

/** The rest of /v1/jobs (POST / is submitJobHandler, mounted apart). */
export function jobsRouter(jobs: JobService, lists: TenantSlots): Router {
  const router = Router();

  // A page may read thousands of rows: a tenant's burst of lists takes turns in its own slots, so
  // it holds few of the pool's connections and never makes another tenant's requests wait.
  router.get("/", async (req, res) => {
    const query = JobListQuery.safeParse(req.query);
    if (!query.success) return sendProblem(res, 422, "validation_failed", "invalid query parameters", zodFaults(query.error, "/query"));
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
      res.json((await jobs.list(req.tenant!.id, query.data)) satisfies JobListPage);
    } finally {
      slot.release();
    }
  });

  router.get(
    "/:id",
    longPollHandler((tenantId, id, seconds, signal) => jobs.wait(tenantId, id, seconds, signal)),
  );

  router.post("/:id/cancel", async (req, res) => {
    res.json((await jobs.cancel(req.tenant!.id, req.params.id)) satisfies JobView);
  });

  return router;
}
