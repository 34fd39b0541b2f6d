import { Router } from "express";
import { isUuid, NotFoundError } from "@inferline/contracts";
import type { Database } from "@inferline/db";
import { getWebhookSecret, lastJobEventId, listJobWebhooks, rotateWebhookSecret, type WebhookQueue } from "@inferline/webhooks";

export interface WebhooksRouterDeps {
  db: Database;
  webhooks: WebhookQueue;
  /** How long the previous secret keeps signing after a rotation, in seconds. */
  rotationWindowSeconds: number;
}


/** The tenant's signing secret, and the webhook record of its jobs. Mounted on /v1. */
export function webhooksRouter(deps: WebhooksRouterDeps): Router {
  const router = Router();

  router.get("/webhooks/secret", async (req, res) => {
    const secret = await getWebhookSecret(deps.db, req.tenant!.id);
    if (!secret) throw new NotFoundError("tenant", req.tenant!.id);
    res.json(secret);
  });

  router.post("/webhooks/secret/rotate", async (req, res) => {
    const secret = await rotateWebhookSecret(deps.db, req.tenant!.id, deps.rotationWindowSeconds);
    if (!secret) throw new NotFoundError("tenant", req.tenant!.id);
    res.json(secret);
  });

  router.get("/jobs/:id/webhooks", async (req, res) => {
    const record = isUuid(req.params.id) ? await listJobWebhooks(deps.db, req.tenant!.id, req.params.id) : null;
    if (!record) throw new NotFoundError("job", req.params.id);
    res.json(record);
  });

  // Sends the job's latest event again as a new attempt with the same webhook-id; 202 because the
  // attempt runs on the webhooks queue (read its outcome from GET /v1/jobs/:id/webhooks).
  router.post("/jobs/:id/webhooks/redeliver", async (req, res) => {
    const eventId = isUuid(req.params.id) ? await lastJobEventId(deps.db, req.tenant!.id, req.params.id) : undefined;
    if (eventId === undefined) throw new NotFoundError("job", req.params.id);
    if (eventId === null) throw new NotFoundError("webhook event of job", req.params.id);
    await deps.webhooks.redeliver(eventId);
    res.status(202).json({ eventId, status: "queued" });
  });

  return router;
}
