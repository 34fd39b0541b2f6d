export { assertPublicTarget, guardedLookup, refusedAddressReason, UnsafeTargetError, type TargetOptions, type HostLookup } from "./ssrf.ts";
export { signatureHeader, webhookHeaders } from "./signing.ts";
export { DEFAULT_RETRY_SCHEDULE_MS, RETRY_JITTER, parseRetrySchedule, nextRetryDelay, parseRetryAfter } from "./schedule.ts";
export { WebhookQueue, MAX_QUEUE_ATTEMPTS, type DeliveryPayload } from "./queue.ts";
export { recordJobEvents, recordBatchCompletedEvent, recordBatchCompleted, webhookEventId, wantsEvent, JOB_EVENT_TYPES, type RecordedEvent, type WebhookPayload, type CompletedBatch } from "./events.ts";
export { deliverEvent, DEFAULT_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES, type DeliveryOptions, type DeliveryOutcome, type DeliveryResult } from "./deliver.ts";
export { WebhookWorker, type WebhookWorkerOptions, type WebhookLogger } from "./worker.ts";
export { getWebhookSecret, rotateWebhookSecret, listJobWebhooks, lastJobEventId, type WebhookSecretView, type WebhookEventView, type WebhookAttemptView } from "./tenant.ts";
export { webhookTargetChecker } from "./check.ts";
