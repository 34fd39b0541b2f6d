export {
  Database,
  inTransaction,
  assertPostgresReachable,
  POSTGRES_HINT,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type DatabaseOptions,
  type Queryable,
} from "./database.ts";
export { postgresFailure, isPostgresUnavailable, type PostgresFailure } from "./dependency-errors.ts";
export { migrate, migrationsDir, ensureDatabase, MIGRATIONS_DIR } from "./migrate.ts";
export {
  JobStore,
  toJobView,
  viewOfNewJob,
  viewOfAnsweredJob,
  submittedFields,
  type SubmittedFields,
  type JobStoreOptions,
  ANNOUNCED_RESULT_BYTES,
  ANNOUNCED_MAX_JOBS,
  type NewJob,
  type AnsweredJob,
  type FlightLeader,
  type FollowResult,
  type InsertedFollower,
  type ReleasedFollowers,
  type ClaimedJob,
  type ClaimResult,
  type JobOutcome,
  type FinishedJob,
  type IsolatedJob,
} from "./job-store.ts";
export { LIST_SCAN_ROWS } from "./jobs/listing.ts";
export { encodeCursor } from "./bounded-page.ts";
export { BatchStore, settleBatch, type BatchStoreOptions, type BatchSettlement } from "./batch-store.ts";
export {
  BatchDraft,
  DRAFT_IDLE_TIMEOUT_MS,
  type NewBatch,
  type NewBatchChunk,
  type CommittedDraft,
} from "./batch-draft.ts";
export {
  BatchChunkStore,
  MAX_CHUNK_RESULT_BYTES,
  type BatchChunkStoreOptions,
  type ItemListOptions,
  type ItemPage,
  type ClaimedChunk,
  type ChunkItemOutcome,
  type ChunkOverdue,
  type ExpiredChunks,
  type FinishedChunk,
  type ResultPage,
} from "./batch-chunk-store.ts";
export {
  DispatchStore,
  type PendingDispatch,
  type PendingItems,
  type EmptiedEntry,
  type EntryCountStore,
  type ReconcilerStore,
  type QueueDepthStore,
  type TenantQuotaStore,
  type QueueStatusStore,
  type QueueGaugeStore,
  type ModelQueueLine,
  type QueueClassStore,
  type QueueClass,
  type TenantQueue,
  type ModelQueue,
} from "./dispatch-store.ts";
export {
  WebhookEventStore,
  type RecordedEvent,
  type NewWebhookEvent,
  type ClaimedWebhookEvent,
  type WebhookAttempt,
  type WebhookEventRow,
  type WebhookAttemptRow,
  type RedeliveryClaim,
  type EventJob,
  type WebhookEventRecorder,
  type WebhookDeliveryStore,
  type WebhookWorkerStore,
  type JobWebhookStore,
} from "./webhook-event-store.ts";
export { RetentionStore } from "./retention-store.ts";
export { TenantCapStore, ALL_MODELS, type TenantCap } from "./tenant-cap-store.ts";
export {
  TenantStore,
  hashApiKey,
  isWellFormedApiKey,
  newWebhookSecret,
  MAX_PREVIOUS_WEBHOOK_SECRETS,
  type Tenant,
  type TenantSettings,
  type CreatedKey,
  type ApiKeyInfo,
  type RevokedKey,
  type WebhookSecret,
  type WebhookSecretStore,
  type KeyLookup,
} from "./tenant-store.ts";
export { Prisma, type PrismaClient, type Job, type Batch } from "./generated/prisma/client.ts";
export { isRowFault } from "./row-faults.ts";
