import { Router, type RequestHandler } from "express";
import { JobListQuery, JobSubmission, type JobListPage, type JobView } from "@inferline/contracts";
import { hops } from "@inferline/runtime";
import type { JobService } from "../services/job-service.ts";
import { sendProblem, zodFaults } from "../problem.ts";
import { listHandler } from "./list-handler.ts";
import { IDEMPOTENCY_KEY_FAULT, IdempotencyKey } from "../services/idempotency.ts";
import { CANCEL_AFTER_FAULT, CANCEL_AFTER_HINT, cancelAfterHeader } from "../services/deadlines.ts";
import { longPollHandler } from "./long-poll-handler.ts";
import type { TenantSlots } from "../services/tenant-slots.ts";
import type { ApiMetrics } from "../metrics.ts";

/**
 * POST /v1/jobs's handler. createApp mounts it on the app itself, ahead of every router: the
 * hottest route then passes no router it does not use.
 */
export function submitJobHandler(jobs: JobService, metrics?: Pick<ApiMetrics, "submitted">): RequestHandler {
  return async (req, res) => {
    const arrived = hops.now(); // the bench's hop trace (off: 0); the id is known only after submit
    const parsed = JobSubmission.safeParse(req.body);
    if (!parsed.success)
      return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(parsed.error));
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
    res.writeHead(replayed ? 200 : 202, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      location: `/v1/jobs/${job.id}`,
    });
    res.end(body);
  };
}

/** The rest of /v1/jobs (POST / is submitJobHandler, mounted apart). */
export function jobsRouter(jobs: JobService, lists: TenantSlots): Router {
  const router = Router();

  router.get(
    "/",
    listHandler(JobListQuery, lists, (tenantId, query) => jobs.list(tenantId, query) satisfies Promise<JobListPage>),
  );

  router.get(
    "/:id",
    longPollHandler((tenantId, id, seconds, signal) => jobs.wait(tenantId, id, seconds, signal)),
  );

  router.post("/:id/cancel", async (req, res) => {
    res.json((await jobs.cancel(req.tenant!.id, req.params.id)) satisfies JobView);
  });

  return router;
}
