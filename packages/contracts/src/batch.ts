import crypto from "node:crypto";
import { z } from "zod";
import { Tensor } from "./tensor.ts";
import {
  CacheMode,
  isUuid,
  JobPriority,
  Timestamp,
  MaxQueueSeconds,
  Metadata,
  OutputRequest,
  WebhookSpec,
  type JobStatus,
} from "./job.ts";
import { StorableText } from "./text.ts";

export const MAX_BATCH_ITEMS = 100_000;

export const BatchItem = z.strictObject({
  customId: StorableText.min(1).max(256).optional(),
  inputs: z.array(Tensor).min(1).max(16),
});
export type BatchItem = z.infer<typeof BatchItem>;
/** One batch item as a client writes it. */
export type BatchItemInput = z.input<typeof BatchItem>;

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
  /** `bypass`: every item runs the model, even those the result cache could answer, and stores its result; `off`: every item runs and the cache is left alone (see CacheMode). */
  cache: CacheMode.optional(),
});
export type BatchHeader = z.infer<typeof BatchHeader>;
/** A batch's settings as a client writes them (fields with server defaults optional). */
export type BatchHeaderInput = Omit<z.input<typeof BatchHeader>, "maxQueueSeconds"> & { maxQueueSeconds?: number };

export const BatchSubmission = BatchHeader.extend({
  items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS),
});
export type BatchSubmission = z.infer<typeof BatchSubmission>;

export const BatchStatus = z.enum(["queued", "running", "completed", "canceled"]);
export type BatchStatus = z.infer<typeof BatchStatus>;

const count = z.number().int().min(0);

/** A batch as the API shows it (POST /v1/batches, GET /v1/batches/:id, its cancel). */
export const BatchView = z
  .object({
    id: z.string().meta({ description: "A UUID ending in 00000 (item i's job id ends in i + 1, in hex)" }),
    status: BatchStatus,
    model: z.string(),
    version: z.string(),
    priority: JobPriority,
    total: count.meta({ description: "Items in the batch" }),
    counts: z
      .object({
        queued: count,
        running: count,
        succeeded: count,
        failed: count,
        canceled: count,
        expired: count,
      } satisfies Record<JobStatus, typeof count>)
      .meta({ description: "Items by status" }),
    createdAt: Timestamp,
    completedAt: Timestamp.optional(),
    canceledAt: Timestamp.optional(),
  })
  .meta({
    description: "A batch: its items' counts by status",
    examples: [
      {
        id: "3c9d6a52-0f1b-4a7e-8d2c-6b1e4f900000",
        status: "running",
        model: "iris",
        version: "1",
        priority: "low",
        total: 3,
        counts: { queued: 1, running: 1, succeeded: 1, failed: 0, canceled: 0, expired: 0 },
        createdAt: "2026-01-05T10:00:00.000Z",
      },
    ],
  });
export type BatchView = z.infer<typeof BatchView>;

/** GET /v1/batches: a tenant's batches, newest first, a page at a time. */
export const BatchListQuery = z.strictObject({
  status: BatchStatus.optional(),
  model: StorableText.max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(512).optional(),
});
export type BatchListQuery = z.infer<typeof BatchListQuery>;

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
