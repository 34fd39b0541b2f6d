export { Database, assertPostgresReachable, POSTGRES_HINT, type DatabaseOptions, type Queryable } from "./database.ts";
export { postgresFailure, isPostgresUnavailable, type PostgresFailure } from "./dependency-errors.ts";
export { migrate, ensureDatabase, MIGRATIONS_DIR } from "./migrate.ts";
export { JobStore, toJobView, InvalidCursorError, type NewJob, type ClaimedJob, type JobOutcome, type FinishedJob, type IsolatedJob } from "./job-store.ts";
export { BatchStore, BatchDraft, DRAFT_IDLE_TIMEOUT_MS, settleBatch, type BatchStoreOptions, type NewBatch, type NewBatchChunk, type BatchSettlement } from "./batch-store.ts";
export { BatchChunkStore, type ClaimedChunk, type ChunkItemOutcome, type FinishedChunk } from "./batch-chunk-store.ts";
export { TenantStore, hashApiKey, isWellFormedApiKey, newWebhookSecret, type Tenant, type CreatedKey, type ApiKeyInfo, type RevokedKey } from "./tenant-store.ts";
export { Prisma, type PrismaClient, type Job, type Batch } from "./generated/prisma/client.ts";
export { isRowFault } from "./row-faults.ts";
