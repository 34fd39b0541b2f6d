-- The retention pass deletes by age. BRIN indexes suit append-ordered timestamps: a few pages
-- each, next to no cost per insert (a B-tree here would cost every submit).
CREATE INDEX "jobs_createdAt_brin" ON "jobs" USING brin ("createdAt");
CREATE INDEX "webhook_events_createdAt_brin" ON "webhook_events" USING brin ("createdAt");
