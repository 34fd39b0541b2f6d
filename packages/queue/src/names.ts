import type { FlatTensor } from "@inferline/contracts";

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
  /** What a claim of the entry's one job would return, carried by the API for a lone small job (see CarriedJob). */
  carried?: CarriedJob;
}

/**
 * A lone job's run inputs, carried in its queue entry by the API when the job is small, has no
 * webhook, leads no single flight and has no deadline: a worker may then run it before claiming
 * it and write its outcome only if it is still queued (see the worker's processor), one
 * PostgreSQL round trip less. Any other delivery of the entry claims as usual.
 */
export interface CarriedJob {
  tenantId: string;
  inputs: FlatTensor[];
  requestedOutputs: string[];
  cacheKey: string | null;
  traceParent: string | null;
}

/** The set of worker ids that reported on `model` (see ModelReadinessPublisher). */
export function modelReadinessKey(prefix: string, model: string): string {
  return `${prefix}:model-readiness:${model}`;
}

/** One worker's report on `model`, which expires unless the worker renews it. */
export function modelReportKey(prefix: string, model: string, worker: string): string {
  return `${prefix}:model-readiness:${model}:${worker}`;
}
