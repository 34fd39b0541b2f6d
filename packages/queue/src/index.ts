export {
  createRedis,
  assertRedisReachable,
  redisTarget,
  bullmqPrefix,
  describeRedisTarget,
  REDIS_HINT,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  type RedisRole,
  type RedisConnection,
  type RedisTarget,
} from "./redis.ts";
export { redisFailure, isRedisUnavailable, type RedisFailure } from "./redis-errors.ts";
export {
  inferQueueName,
  parseInferQueueName,
  finishedChannel,
  WEBHOOK_QUEUE,
  type CarriedJob,
  type DispatchPayload,
} from "./names.ts";
export { entryPriority, CLASS_BASE, CLASS_SPAN, MAX_QUEUE_PRIORITY } from "./fair-priority.ts";
export { Dispatcher, JOB_RETRY_JITTER, type DispatcherOptions, type DispatchGroup } from "./dispatcher.ts";
export { addEntries, type QueueEntrySpec } from "./add-entries.ts";
export {
  FinishedNotifier,
  FinishedListener,
  DEFAULT_RECHECK_MS,
  MAX_ANNOUNCED_VIEW_BYTES,
  type WaitEnd,
} from "./finished-events.ts";
export {
  keyRevokedChannel,
  KeyRevocationNotifier,
  KeyRevocationListener,
  publishKeyRevocation,
  type KeyRevocationHandlers,
} from "./key-events.ts";
export { modelReadinessKey, modelReportKey } from "./names.ts";
export {
  ModelReadinessPublisher,
  type ModelReadinessPublisherOptions,
  type ReadinessPublisherRedis,
} from "./model-readiness-publisher.ts";
export { ModelReadinessReader, type ReadinessReaderRedis } from "./model-readiness-reader.ts";
export { TenantLeases, tenantCapKey, runningUnderCap, type CapLease, type CapSlot } from "./tenant-leases.ts";
