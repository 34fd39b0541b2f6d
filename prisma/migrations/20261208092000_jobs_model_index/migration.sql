-- GET /v1/jobs?model=: a tenant's jobs of one model, newest first, read through an index instead
-- of a scan over all of the tenant's jobs (at 10,000,000 jobs of one tenant such a scan outlived
-- the API's statement timeout). A job's model never changes, so this index costs an insert one
-- more entry and leaves claim and result updates HOT. The status filter stays unindexed (see
-- JobStore.list). IF NOT EXISTS: an operator with a large table may build it beforehand without
-- blocking inserts (CREATE INDEX CONCURRENTLY, same name), as a migration cannot.
CREATE INDEX IF NOT EXISTS "jobs_tenantId_model_createdAt_id_idx" ON "jobs" ("tenantId", "model", "createdAt" DESC, "id" DESC);
