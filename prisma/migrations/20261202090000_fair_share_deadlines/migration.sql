-- Fair share between tenants, deadlines and quotas (issue 11). Constant defaults and nullable
-- columns only: adding them rewrites no rows.

-- A job or batch item not started before its queue deadline ends `expired` (never run).
ALTER TYPE "JobStatus" ADD VALUE IF NOT EXISTS 'expired';

-- Deadlines: `queueDeadline` (maxQueueSeconds, or the model's default) bounds the wait for a
-- worker; `cancelAt` (the Cancel-After header) bounds the whole job, running or not.
ALTER TABLE "jobs" ADD COLUMN "queueDeadline" TIMESTAMPTZ(3), ADD COLUMN "cancelAt" TIMESTAMPTZ(3);
ALTER TABLE "batches" ADD COLUMN "queueDeadline" TIMESTAMPTZ(3), ADD COLUMN "cancelAt" TIMESTAMPTZ(3);
ALTER TABLE "batch_chunks" ADD COLUMN "expired" INTEGER NOT NULL DEFAULT 0;

-- Whose work a queue entry carries (entries are planned per tenant), and when a worker took it:
-- the fair-share rank, the tenant's quota and the queue status route read these.
ALTER TABLE "dispatches" ADD COLUMN "tenantId" UUID, ADD COLUMN "startedAt" TIMESTAMPTZ(3);
CREATE INDEX "dispatches_model_tenantId_idx" ON "dispatches" ("model", "tenantId");
CREATE INDEX "dispatches_tenantId_idx" ON "dispatches" ("tenantId");

-- Per-tenant scheduling weight (share of a model's workers when several tenants wait) and quota
-- of queued jobs and items (null: the operator's default, DEFAULT_TENANT_MAX_QUEUED).
ALTER TABLE "tenants" ADD COLUMN "weight" INTEGER NOT NULL DEFAULT 1, ADD COLUMN "maxQueued" INTEGER;
