import type { FlatTensor } from "@inferline/contracts";

/**
 * One BullMQ queue per model version, so that a worker consumes only the versions it loaded: a
 * version that failed to load on a worker, or that its manifest lacks (a rolling deploy adding
 * one), is left to the workers that serve it, and its jobs wait in the queue until one does. The
 * version is URI-encoded (BullMQ refuses ':' in a name); a model's name never holds '@'.
 */
export function inferQueueName(model: string, version: string): string {
  return `infer-${model}@${encodeURIComponent(version)}`;
}

/** The model and version whose queue is `queueName` (see inferQueueName). */
export function parseInferQueueName(queueName: string): { model: string; version: string } {
  const at = queueName.indexOf("@");
  return { model: queueName.slice("infer-".length, at), version: decodeURIComponent(queueName.slice(at + 1)) };
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
  /** The tenant whose work the entry carries: for its concurrency caps, and so a worker running another tenant's entry of this queue yields its slot to it (see the worker's SlotBound). Absent on entries added before it was carried, and on workers' own re-adds. */
  tenantId?: string;
  /** That tenant's weight when the entry was added: what the rest of an entry handed back ranks by (see the worker's SlotBound). */
  weight?: number;
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
