-- The result cache for batch items (issue 12). Each chunk keeps its items' cache digests
-- (index-aligned; computed by the API where inputs are validated, so the worker stores each
-- result under its digest without recomputing it) and which items were answered from the cache
-- when the batch was created (stored already succeeded, never run). Both stay empty for models
-- without a cache and for chunks with no hit. Constant defaults: adding them rewrites no rows.
ALTER TABLE "batch_chunks" ADD COLUMN "cacheKeys" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "cached" BOOLEAN[] DEFAULT ARRAY[]::BOOLEAN[];
