// The public surface of @inferline/client, named one by one: what is not here is internal.
export { InferlineClient } from "./inferline-client.ts";
export type { ClientOptions } from "./client-options.ts";
export {
  InferlineAPIError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  ValidationError,
  RateLimitError,
  UnavailableError,
  ConnectionError,
  TimeoutError,
} from "./api-error.ts";
export { JobFailedError } from "./job-failed-error.ts";
export { WebhookVerificationError } from "./webhook-verification-error.ts";
export { verifyWebhook, type WebhookHeaders } from "./verify-webhook.ts";
export { isTerminalJob, type Jobs } from "./jobs.ts";
export { isFinishedBatch, type Batches } from "./batches.ts";
export type { Models } from "./models.ts";
export type { Webhooks } from "./webhooks.ts";
export { VERSION } from "./version.ts";
// The request and answer types, listed once in types.ts.
export type * from "./types.ts";
