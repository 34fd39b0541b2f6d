import crypto from "node:crypto";
import { z } from "zod";
import { Tensor } from "./tensor.ts";
import { CacheMode, isUuid, JobPriority, MaxQueueSeconds, Metadata, OutputRequest, WebhookSpec, type JobStatus } from "./job.ts";
import { StorableText } from "./text.ts";

export const MAX_BATCH_ITEMS = 100_000;

export const BatchItem = z.strictObject({
  customId: StorableText.min(1).max(256).optional(),
  inputs: z.array(Tensor).min(1).max(16),
});
export type BatchItem = z.infer<typeof BatchItem>;

/** Everything of a batch but its items (which arrive in the JSON body or as NDJSON lines). */
export const BatchHeader = z.strictObject({
  model: z.string().min(1).max(64),
  version: z.string().min(1).max(64).optional(),
  outputs: z.array(OutputRequest).max(16).optional(),
  webhook: WebhookSpec.optional(),
  /** Batches default to low priority so that bulk work never starves interactive jobs. */
  priority: JobPriority.default("low"),
  metadata: Metadata.default({}),
  /** Every item's queue deadline, from the batch's creation (see MaxQueueSeconds). */
  maxQueueSeconds: z.coerce.number().pipe(MaxQueueSeconds).optional(),
  /** `bypass`: every item runs the model, even those the result cache could answer. */
  cache: CacheMode.optional(),
});
export type BatchHeader = z.infer<typeof BatchHeader>;

export const BatchSubmission = BatchHeader.extend({
  items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS),
});
export type BatchSubmission = z.infer<typeof BatchSubmission>;

export type BatchStatus = "queued" | "running" | "completed" | "canceled";

export interface BatchView {
  id: string;
  status: BatchStatus;
  model: string;
  version: string;
  priority: JobPriority;
  total: number;
  counts: Record<JobStatus, number>;
  createdAt: string;
  completedAt?: string;
  canceledAt?: string;
}

/** Items per stored chunk (and queue entry) of a batch; see the BatchChunk model. */
export const BATCH_CHUNK_SIZE = 512;

/**
 * Batch items are jobs without rows of their own: item i's job id is its batch id with the last
 * five hex digits replaced by i + 1, which is why batch ids end in 00000 (still random UUIDs
 * otherwise: 102 random bits). The job API reads an item through its batch's chunk.
 */
const ITEM_DIGITS = 5;
const ITEM_OFFSET = 36 - ITEM_DIGITS;

export function newBatchId(): string {
  return `${crypto.randomUUID().slice(0, ITEM_OFFSET)}00000`;
}

export function batchItemId(batchId: string, index: number): string {
  return `${batchId.slice(0, ITEM_OFFSET)}${(index + 1).toString(16).padStart(ITEM_DIGITS, "0")}`;
}

/** The batch and index a job id names, or null when it cannot be a batch item's. */
export function parseBatchItemId(id: string): { batchId: string; index: number } | null {
  if (!isUuid(id)) return null;
  const n = Number.parseInt(id.slice(ITEM_OFFSET), 16);
  return n > 0 ? { batchId: `${id.slice(0, ITEM_OFFSET)}00000`, index: n - 1 } : null;
}
