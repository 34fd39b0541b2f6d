import { z } from "zod";
import { Tensor } from "./tensor.ts";
import { JobPriority, WebhookSpec, type JobStatus } from "./job.ts";

export const MAX_BATCH_ITEMS = 100_000;

export const BatchItem = z.object({
  customId: z.string().min(1).max(256).optional(),
  inputs: z.array(Tensor).min(1).max(16),
});
export type BatchItem = z.infer<typeof BatchItem>;

/** Everything of a batch but its items (which arrive in the JSON body or as NDJSON lines). */
export const BatchHeader = z.object({
  model: z.string().min(1).max(64),
  version: z.string().min(1).max(64).optional(),
  outputs: z.array(z.object({ name: z.string().min(1) })).max(16).optional(),
  webhook: WebhookSpec.optional(),
  /** Batches default to low priority so that bulk work never starves interactive jobs. */
  priority: JobPriority.default("low"),
  metadata: z.record(z.string().max(64), z.string().max(512)).default({}),
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
