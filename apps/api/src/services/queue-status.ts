import { z } from "zod";
import type { ModelQueue, QueueStatusStore, TenantCap } from "@inferline/db";

/** One concurrency cap of the caller that applies on this model, and what runs under it now. */
export const QueueCap = z.object({
  /** The model it caps; null: a cap over every model of the tenant. */
  model: z.string().nullable(),
  /** Most jobs and batch items of the tenant running at once under it (`inferline tenants set --max-running`). */
  maxRunning: z.number().int(),
  /** Jobs and batch items running under it now, as the workers' leases count them; null when Redis cannot say. */
  running: z.number().int().nullable(),
});
export type QueueCap = z.infer<typeof QueueCap>;

/** What the queue status route reads of caps: the tenant's caps, and the running count under one. */
export interface CapReader {
  caps(tenantId: string): Promise<TenantCap[]>;
  running(tenantId: string, model: string): Promise<number>;
}

/** `GET /v1/models/:name/queue`: enough for a client to decide to back off. */
export const QueueStatus = z.object({
  model: z.string(),
  /** The caller's jobs and batch items of this model: not started yet, and started. */
  tenant: z.object({
    queued: z.number().int(),
    running: z.number().int(),
    /** The caller's concurrency caps that apply on this model (its cap on it, and its cap over every model); empty: none. */
    caps: z.array(QueueCap),
  }),
  /** Every tenant's jobs and batch items of this model, queued or running (what MAX_QUEUE_DEPTH counts). */
  depth: z.number().int(),
  /** How long the model's oldest queue entry not yet started has waited; null when none waits. */
  oldestQueuedAgeSeconds: z.number().nullable(),
});
export type QueueStatus = z.infer<typeof QueueStatus>;

interface ModelReading {
  depth: number;
  /** When the oldest waiting entry was queued (ms since the epoch), so a reused reading's age still grows. */
  oldestQueuedAt: number | null;
  at: number;
}

/**
 * The queue status route's numbers. The caller's own counts are read each time (one indexed
 * statement over its entries of the model); the model-wide part, the same for every caller, is
 * read at most once per `maxAgeMs` per model in this process, so clients polling it cost about
 * one statement a second.
 */
export class QueueStatusService {
  private readonly readings = new Map<string, ModelReading>();
  private readonly reading = new Map<string, Promise<ModelReading>>();

  constructor(
    private readonly store: QueueStatusStore,
    private readonly maxAgeMs = 1000,
    private readonly capReader?: CapReader,
  ) {}

  /** `model` must be a known model's name (the route checks it). */
  async status(model: string, tenantId: string): Promise<QueueStatus> {
    const [tenant, whole, caps] = await Promise.all([
      this.store.tenantQueue(model, tenantId),
      this.modelReading(model),
      this.caps(model, tenantId),
    ]);
    const age =
      whole.oldestQueuedAt === null ? null : Math.max(0, Math.round(Date.now() - whole.oldestQueuedAt) / 1000);
    return { model, tenant: { ...tenant, caps }, depth: whole.depth, oldestQueuedAgeSeconds: age };
  }

  /** The caller's caps on `model` and over every model, each with what runs under it (null when Redis does not answer). */
  private async caps(model: string, tenantId: string): Promise<QueueCap[]> {
    if (!this.capReader) return [];
    const reader = this.capReader;
    const caps = (await reader.caps(tenantId)).filter((c) => c.model === model || c.model === "*");
    return Promise.all(
      caps.map(async (c) => ({
        model: c.model === "*" ? null : c.model,
        maxRunning: c.maxRunning,
        running: await reader.running(tenantId, c.model).catch(() => null),
      })),
    );
  }

  private async modelReading(model: string): Promise<ModelReading> {
    const cached = this.readings.get(model);
    if (cached && Date.now() - cached.at < this.maxAgeMs) return cached;
    let pending = this.reading.get(model);
    if (!pending) {
      pending = this.store
        .modelQueue(model)
        .then((q) => this.remember(model, q))
        .finally(() => this.reading.delete(model));
      this.reading.set(model, pending);
    }
    return pending;
  }

  private remember(model: string, q: ModelQueue): ModelReading {
    const at = Date.now();
    const reading = {
      depth: q.depth,
      oldestQueuedAt: q.oldestQueuedAgeSeconds === null ? null : at - q.oldestQueuedAgeSeconds * 1000,
      at,
    };
    this.readings.set(model, reading);
    return reading;
  }
}
