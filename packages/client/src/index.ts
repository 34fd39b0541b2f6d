// The public surface of @inferline/client, named. Types only from @inferline/contracts: nothing of
// zod loads with the client.
export { InferlineClient } from "./inferline-client.ts";
export type { ClientOptions } from "./client-options.ts";
export { InferlineError } from "./inferline-error.ts";
export { InferlineConnectionError } from "./connection-error.ts";
export { WebhookVerificationError } from "./webhook-verification-error.ts";
export { verifyWebhook, type WebhookHeaders } from "./verify-webhook.ts";
export { isTerminalJob, type Jobs } from "./jobs.ts";
export { isFinishedBatch, type Batches } from "./batches.ts";
export type { Models } from "./models.ts";
// The request and answer types, listed once in types.ts.
export type * from "./types.ts";
