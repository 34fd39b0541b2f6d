-- Per-tenant concurrency caps: at most "maxRunning" of a tenant's jobs and batch items run at
-- once, on one model or (model '*') over every model. Workers read these rows (cached a few
-- seconds) and enforce them when they take an entry, with leases in Redis. A new table: nothing
-- existing is rewritten.
CREATE TABLE "tenant_caps" (
    "tenantId" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "maxRunning" INTEGER NOT NULL,

    CONSTRAINT "tenant_caps_pkey" PRIMARY KEY ("tenantId","model")
);

ALTER TABLE "tenant_caps" ADD CONSTRAINT "tenant_caps_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;
