import { Router } from "express";
import {
  InferlineError,
  isUuid,
  NotFoundError,
  type JobWebhooks,
  type WebhookRedelivery,
  type WebhookSecret,
} from "@inferline/contracts";
import type { JobWebhookStore, WebhookSecretStore } from "@inferline/db";
import { getWebhookSecret, listJobWebhooks, rotateWebhookSecret, type WebhookQueue } from "@inferline/webhooks";

export interface WebhooksRouterDeps {
  tenants: WebhookSecretStore;
  events: Pick<JobWebhookStore, "listForJob" | "claimRedelivery" | "refundRedelivery">;
  webhooks: WebhookQueue;
  /** How long a secret a rotation replaces keeps signing, in seconds. */
  rotationWindowSeconds: number;
  /** Manual redeliveries allowed per event (WEBHOOK_MAX_REDELIVERIES). */
  maxRedeliveries: number;
}

/**
 * An event that has had its share of manual redeliveries. The limit is for the event's lifetime,
 * not a window: waiting would not lift it, so no Retry-After.
 */
export class RedeliveryLimitError extends InferlineError {
  constructor(eventId: string, max: number) {
    super("redelivery_limit", `event ${eventId} has been redelivered ${max} times, the most allowed for one event`, {
      status: 429,
    });
  }
}

/** The tenant's signing secret, and the webhook record of its jobs. Mounted on /v1. */
export function webhooksRouter(deps: WebhooksRouterDeps): Router {
  const router = Router();

  router.get("/webhooks/secret", async (req, res) => {
    const secret = await getWebhookSecret(deps.tenants, req.tenant!.id);
    if (!secret) throw new NotFoundError("tenant", req.tenant!.id);
    res.json(secret satisfies WebhookSecret);
  });

  router.post("/webhooks/secret/rotate", async (req, res) => {
    const secret = await rotateWebhookSecret(deps.tenants, req.tenant!.id, deps.rotationWindowSeconds);
    if (!secret) throw new NotFoundError("tenant", req.tenant!.id);
    res.json(secret satisfies WebhookSecret);
  });

  router.get("/jobs/:id/webhooks", async (req, res) => {
    const record = isUuid(req.params.id) ? await listJobWebhooks(deps.events, req.tenant!.id, req.params.id) : null;
    if (!record) throw new NotFoundError("job", req.params.id);
    res.json(record satisfies JobWebhooks);
  });

  // Sends the job's latest event again as a new attempt with the same webhook-id; 202 because the
  // attempt runs on the webhooks queue (read its outcome from GET /v1/jobs/:id/webhooks). Each
  // event allows maxRedeliveries, so a client looping on this route cannot flood the queue.
  router.post("/jobs/:id/webhooks/redeliver", async (req, res) => {
    const tenantId = req.tenant!.id;
    const max = deps.maxRedeliveries;
    const claim = isUuid(req.params.id)
      ? await deps.events.claimRedelivery(tenantId, req.params.id, max)
      : ({ notFound: "job" } as const);
    if ("notFound" in claim)
      throw new NotFoundError(claim.notFound === "job" ? "job" : "webhook event of job", req.params.id);
    if ("limitReached" in claim) throw new RedeliveryLimitError(claim.eventId, max);
    try {
      await deps.webhooks.redeliver(claim.eventId, tenantId);
    } catch (err) {
      await deps.events.refundRedelivery(claim.eventId).catch(() => {});
      throw err;
    }
    res.status(202).json({
      eventId: claim.eventId,
      status: "queued",
      redeliveries: claim.redeliveries,
      maxRedeliveries: max,
    } satisfies WebhookRedelivery);
  });

  return router;
}
