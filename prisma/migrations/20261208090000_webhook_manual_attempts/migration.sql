-- Attempts of an event that were manual redeliveries (POST /v1/jobs/:id/webhooks/redeliver).
-- `attempts` keeps numbering every attempt; the automatic retry schedule counts only the others
-- (attempts - manualAttempts), so redeliveries never use up an event's automatic retries. A
-- constant default: adding the column rewrites no rows, and existing attempts count as automatic.
ALTER TABLE "webhook_events" ADD COLUMN "manualAttempts" INTEGER NOT NULL DEFAULT 0;
