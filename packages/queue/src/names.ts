/** One BullMQ queue per model, so workers can serve a subset of models. */
export function inferQueueName(model: string): string {
  return `infer-${model}`;
}

export const WEBHOOK_QUEUE = "webhooks";

/** Redis pub/sub channel on which workers announce jobs that reached a terminal state. */
export function finishedChannel(prefix: string): string {
  return `${prefix}:events:job-finished`;
}

/**
 * Payload of one queue entry: several jobs of one model version travel together, or (batchChunk)
 * the entry's id is a batch chunk's, whose items are read from its row.
 */
export interface DispatchPayload {
  jobIds: string[];
  version: string;
  batchChunk?: boolean;
  /** The entry is run again after the worker running it died (its jobs are suspects of that death). */
  resumed?: boolean;
}

/** The set of worker ids that reported on `model` (see ModelReadinessPublisher). */
export function modelReadinessKey(prefix: string, model: string): string {
  return `${prefix}:model-readiness:${model}`;
}

/** One worker's report on `model`, which expires unless the worker renews it. */
export function modelReportKey(prefix: string, model: string, worker: string): string {
  return `${prefix}:model-readiness:${model}:${worker}`;
}
