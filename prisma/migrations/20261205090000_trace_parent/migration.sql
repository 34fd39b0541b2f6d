-- OpenTelemetry (issue 14): the W3C traceparent of the request that submitted a job or created a
-- batch, so that the worker's claim, inference and result write, and each webhook attempt, join
-- that request's trace. Null when tracing was off. Nullable without a default: adding the
-- columns rewrites no rows, and no index holds them (job updates stay HOT).
ALTER TABLE "jobs" ADD COLUMN "trace_parent" TEXT;
ALTER TABLE "batches" ADD COLUMN "trace_parent" TEXT;
