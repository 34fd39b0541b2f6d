export { Database, assertPostgresReachable, POSTGRES_HINT, type DatabaseOptions, type Queryable } from "./database.ts";
export { migrate, ensureDatabase, MIGRATIONS_DIR } from "./migrate.ts";
export { JobStore, toJobView, InvalidCursorError, type NewJob, type ClaimedJob, type JobOutcome, type FinishedJob } from "./job-store.ts";
export { BatchStore, settleBatch, type NewBatch, type NewBatchChunk, type BatchSettlement } from "./batch-store.ts";
export { BatchChunkStore, type ClaimedChunk, type ChunkItemOutcome, type FinishedChunk } from "./batch-chunk-store.ts";
export { TenantStore, hashApiKey, newWebhookSecret, type Tenant, type CreatedKey } from "./tenant-store.ts";
export { Prisma, type PrismaClient, type Job, type Batch } from "./generated/prisma/client.ts";
