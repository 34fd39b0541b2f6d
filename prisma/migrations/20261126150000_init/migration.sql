-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('queued', 'running', 'succeeded', 'failed', 'canceled');

-- CreateEnum
CREATE TYPE "JobPriority" AS ENUM ('high', 'normal', 'low');

-- CreateTable
CREATE TABLE "tenants" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "webhookSecret" TEXT NOT NULL,
    "previousWebhookSecret" TEXT,
    "previousSecretExpiresAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tenants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "prefix" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),
    "lastUsedAt" TIMESTAMP(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "jobs" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "status" "JobStatus" NOT NULL DEFAULT 'queued',
    "model" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "priority" "JobPriority" NOT NULL DEFAULT 'normal',
    "inputs" JSON NOT NULL,
    "requestedOutputs" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "result" JSON,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "webhook" JSONB,
    "idempotencyKey" TEXT,
    "requestHash" TEXT,
    "batchId" UUID,
    "batchIndex" INTEGER,
    "customId" TEXT,
    "dispatchId" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMPTZ(3),
    "completedAt" TIMESTAMPTZ(3),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "batches" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "total" INTEGER NOT NULL,
    "priority" "JobPriority" NOT NULL DEFAULT 'low',
    "remaining" INTEGER NOT NULL,
    "webhook" JSONB,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMPTZ(3),
    "canceledAt" TIMESTAMPTZ(3),

    CONSTRAINT "batches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_events" (
    "id" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "jobId" UUID,
    "batchId" UUID,
    "type" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "payload" JSON NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "eventId" TEXT NOT NULL,
    "jobId" UUID,
    "attempt" INTEGER NOT NULL,
    "url" TEXT NOT NULL,
    "attemptedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "statusCode" INTEGER,
    "latencyMs" INTEGER,
    "error" TEXT,
    "responseBody" TEXT,
    "nextRetryAt" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dispatches" (
    "id" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "priority" "JobPriority" NOT NULL,
    "jobs" INTEGER NOT NULL,
    "jobIds" UUID[],
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dispatches_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "tenants_name_key" ON "tenants"("name");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_keyHash_key" ON "api_keys"("keyHash");

-- CreateIndex
CREATE INDEX "api_keys_tenantId_idx" ON "api_keys"("tenantId");

-- CreateIndex
CREATE INDEX "jobs_tenantId_createdAt_id_idx" ON "jobs"("tenantId", "createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "jobs_batchId_batchIndex_idx" ON "jobs"("batchId", "batchIndex");

-- CreateIndex
CREATE INDEX "batches_tenantId_createdAt_idx" ON "batches"("tenantId", "createdAt" DESC);

-- CreateIndex
CREATE INDEX "webhook_events_jobId_createdAt_idx" ON "webhook_events"("jobId", "createdAt");

-- CreateIndex
CREATE INDEX "webhook_events_batchId_createdAt_idx" ON "webhook_events"("batchId", "createdAt");

-- CreateIndex
CREATE INDEX "webhook_events_status_nextAttemptAt_idx" ON "webhook_events"("status", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "webhook_deliveries_eventId_attempt_idx" ON "webhook_deliveries"("eventId", "attempt");

-- CreateIndex
CREATE INDEX "webhook_deliveries_jobId_attemptedAt_idx" ON "webhook_deliveries"("jobId", "attemptedAt");

-- CreateIndex
CREATE INDEX "dispatches_createdAt_idx" ON "dispatches"("createdAt");

-- CreateIndex
CREATE INDEX "dispatches_model_idx" ON "dispatches"("model");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "batches" ADD CONSTRAINT "batches_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "webhook_events"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Room on each page for updated row versions: no index covers a column that workers write, so
-- with free space on the page the claim and result updates are HOT updates, which write no index.
-- A result makes the row several times larger; at fillfactor 50 about half the result writes of a
-- 200k-item batch were HOT, at 30 99.6% were (and draining single jobs got no slower).
ALTER TABLE "jobs" SET (fillfactor = 30);

-- Idempotency keys are unique per tenant. Partial, so jobs without a key (batch items, most
-- submits) add no entry; not expressible in schema.prisma, hence here.
CREATE UNIQUE INDEX "jobs_tenantId_idempotencyKey_key" ON "jobs"("tenantId", "idempotencyKey") WHERE "idempotencyKey" IS NOT NULL;

-- jobs.tenantId and jobs.batchId have no FOREIGN KEY constraints, unlike what schema.prisma's
-- relations would generate: checking two parent rows for every inserted job was a third of the
-- cost of inserting a batch's items (measured: 20k rows in 583 ms with them, 396 ms without). The
-- API only writes ids of tenants it authenticated and of batches it creates in the same transaction.

