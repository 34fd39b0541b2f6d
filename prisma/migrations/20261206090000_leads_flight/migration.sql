-- Latency (issue 13): whether a job leads a single flight of the result cache, set at insert.
-- A job with no webhook that leads no flight has nothing to record or finish beside its own row,
-- so its result is written by one statement without a transaction (one round trip, not four).
-- Null for rows inserted before this column (or by an API that predates it): unknown, so their
-- results take the transaction as before. Nullable without a default: adding it rewrites no rows,
-- and no index holds it (job updates stay HOT).
ALTER TABLE "jobs" ADD COLUMN "leadsFlight" BOOLEAN;
