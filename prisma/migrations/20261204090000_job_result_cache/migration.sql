-- Result cache for single jobs (issue 12). A constant default and nullable columns: adding them
-- rewrites no rows.
--
-- `cached`: the job's result came from the result cache, or from the run of an identical job in
-- flight (single flight), not from a run of its own. `cacheKey`: the digest its result is cached
-- under (tenant, model, version, model fingerprint, canonical inputs and outputs), computed by the
-- API; the worker stores the result under it after the result write commits. `cacheLeader`: the
-- job whose run this one waits for; such a follower has no queue entry and no dispatch row, and is
-- finished (or released onto a queue entry of its own) in the transaction that ends its leader.
ALTER TABLE "jobs" ADD COLUMN "cached" BOOLEAN NOT NULL DEFAULT false, ADD COLUMN "cacheKey" TEXT, ADD COLUMN "cacheLeader" UUID;

-- Finding a leader's followers when its run ends. Partial: only waiting followers have a
-- cacheLeader (it is cleared when they finish or are released), so the index stays small and
-- costs every other job's insert nothing, and their claim and result updates stay HOT (null
-- stays null).
CREATE INDEX "jobs_cacheLeader_idx" ON "jobs" ("cacheLeader") WHERE "cacheLeader" IS NOT NULL;
