-- DropIndex
DROP INDEX "jobs_tenantId_status_createdAt_idx";

-- DropIndex
DROP INDEX "jobs_status_createdAt_idx";

-- AlterTable
ALTER TABLE "batches" ADD COLUMN     "priority" "JobPriority" NOT NULL DEFAULT 'low',
ADD COLUMN     "remaining" INTEGER NOT NULL;

-- CreateTable
CREATE TABLE "dispatches" (
    "id" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "priority" "JobPriority" NOT NULL,
    "jobs" INTEGER NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dispatches_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "dispatches_createdAt_idx" ON "dispatches"("createdAt");

-- CreateIndex
CREATE INDEX "dispatches_model_idx" ON "dispatches"("model");

-- CreateIndex
CREATE INDEX "jobs_dispatchId_idx" ON "jobs"("dispatchId");


-- Room on each page for updated row versions, so claim/result updates stay HOT (no index writes).
ALTER TABLE "jobs" SET (fillfactor = 50);
