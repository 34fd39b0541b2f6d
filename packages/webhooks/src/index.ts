export {
  assertPublicTarget,
  guardedLookup,
  refusedAddressReason,
  UnsafeTargetError,
  RESERVED_RANGES,
  DEFAULT_LOOKUP_TIMEOUT_MS,
  type TargetOptions,
  type HostLookup,
} from "./ssrf.ts";
export { signatureHeader, webhookHeaders } from "./signing.ts";
export {
  DEFAULT_RETRY_SCHEDULE_MS,
  MAX_WEBHOOK_ATTEMPTS,
  RETRY_JITTER,
  parseRetrySchedule,
  nextRetryDelay,
  parseRetryAfter,
} from "./schedule.ts";
export { WebhookQueue, MAX_QUEUE_ATTEMPTS, type DeliveryPayload, type EventRef } from "./queue.ts";
export {
  deliverEvent,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_RESPONSE_BYTES,
  type DeliveryOptions,
  type DeliveryOutcome,
  type DeliveryResult,
} from "./deliver.ts";
export {
  WebhookWorker,
  DEFAULT_WEBHOOK_CONCURRENCY,
  DEFAULT_TENANT_CONCURRENCY,
  DEFAULT_SWEEP_INTERVAL_MS,
  DEFAULT_SWEEP_AFTER_MS,
  type WebhookWorkerOptions,
  type WebhookLogger,
} from "./worker.ts";
export { TenantSlots } from "./tenant-slots.ts";
export {
  getWebhookSecret,
  rotateWebhookSecret,
  listJobWebhooks,
  type WebhookSecretView,
  type WebhookEventView,
  type WebhookAttemptView,
} from "./tenant.ts";
export { webhookTargetChecker } from "./check.ts";
