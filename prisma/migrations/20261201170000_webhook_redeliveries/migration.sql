-- Manual redeliveries asked for per event (POST /v1/jobs/:id/webhooks/redeliver), bounded by
-- WEBHOOK_MAX_REDELIVERIES. A constant default: adding the column rewrites no rows.
ALTER TABLE "webhook_events" ADD COLUMN "redeliveries" INTEGER NOT NULL DEFAULT 0;
