/**
 * The attribute names Inferline's spans carry. Only identifiers and sizes: never inputs, results,
 * API keys, webhook secrets or URLs (a webhook's host at most; query strings can hold tokens).
 */
export const ATTR = {
  model: "inferline.model",
  version: "inferline.model.version",
  jobId: "inferline.job.id",
  batchId: "inferline.batch.id",
  chunkId: "inferline.batch.chunk.id",
  /** Jobs (or a chunk's items) claimed and run together from one queue entry. */
  batchSize: "inferline.batch.size",
  attempt: "inferline.attempt",
  outcome: "inferline.outcome",
  webhookEventId: "inferline.webhook.event.id",
  webhookEventType: "inferline.webhook.event.type",
  httpMethod: "http.request.method",
  httpRoute: "http.route",
  httpStatus: "http.response.status_code",
  serverAddress: "server.address",
  messagingSystem: "messaging.system",
  messagingDestination: "messaging.destination.name",
  messagingOperation: "messaging.operation.type",
} as const;
