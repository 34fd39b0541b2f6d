import { DelayedError, Worker, type Job } from "bullmq";
import { RetryAfterError } from "@inferline/contracts";
import { backoffDelay, throttledLogger, type BackoffSchedule } from "@inferline/runtime";
import type { WebhookWorkerStore } from "@inferline/db";
import { bullmqPrefix, WEBHOOK_QUEUE, type RedisConnection } from "@inferline/queue";
import { DEFAULT_TIMEOUT_MS, deliverEvent, type DeliveryOptions, type DeliveryResult } from "./deliver.ts";
import type { DeliveryPayload, WebhookQueue } from "./queue.ts";
import { TenantSlots } from "./tenant-slots.ts";

export interface WebhookLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WebhookWorkerOptions extends DeliveryOptions {
  prefix: string;
  /** Deliveries in flight at once. Default DEFAULT_WEBHOOK_CONCURRENCY (16). */
  concurrency?: number;
  /**
   * Deliveries of one tenant in flight at once in this process (manual redeliveries included), so
   * that one tenant's slow or dead receiver cannot hold every slot. Default 4.
   */
  tenantConcurrency?: number;
  /** How often to look for pending events that have no queue entry, in ms; 0 disables. Default DEFAULT_SWEEP_INTERVAL_MS (30000). */
  sweepIntervalMs?: number;
  /** A pending event overdue by this much is checked by the sweep. Default DEFAULT_SWEEP_AFTER_MS (60000). */
  sweepAfterMs?: number;
  logger: WebhookLogger;
  /** Called after each attempt that was made (not for skipped events): the worker's webhook metrics hang here. */
  onAttempt?: (result: DeliveryResult) => void;
}

/** Deliveries in flight at once per process when the options name none. */
export const DEFAULT_WEBHOOK_CONCURRENCY = 16;
/** Deliveries of one tenant in flight at once per process when the options name none. */
export const DEFAULT_TENANT_CONCURRENCY = 4;
/** How often the sweep looks for pending events without a queue entry, in ms, when the options name no interval. */
export const DEFAULT_SWEEP_INTERVAL_MS = 30_000;
/** How overdue a pending event must be before the sweep checks it, in ms, when the options say nothing. */
export const DEFAULT_SWEEP_AFTER_MS = 60_000;

/**
 * How an entry whose attempt failed for want of PostgreSQL or Redis (not a receiver's answer,
 * which the schedule spaces) is retried: from 1 s, doubling, at most 30 s apart, so that the
 * delivery goes out within seconds of the outage's end.
 */
const ERROR_BACKOFF: BackoffSchedule = { baseMs: 1000, maxMs: 30_000 };

/**
 * Delivers webhook events from the webhooks queue, apart from inference: a slow or dead receiver
 * holds a delivery slot, never an inference slot. Each entry makes one attempt per run; a failed
 * attempt that the schedule retries throws RetryAfterError, and BullMQ re-runs the same entry (same
 * event, same webhook-id) after the delay the processor chose. Each tenant has at most
 * `tenantConcurrency` of the slots: an entry whose tenant is at its cap is parked on the delayed
 * set (see TenantSlots), so other tenants' entries behind it still get slots.
 */
export class WebhookWorker {
  private readonly worker: Worker<DeliveryPayload>;
  private readonly slots: TenantSlots;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;

  constructor(
    private readonly store: WebhookWorkerStore,
    connection: RedisConnection,
    private readonly queue: WebhookQueue,
    private readonly options: WebhookWorkerOptions,
  ) {
    this.slots = new TenantSlots(options.tenantConcurrency ?? DEFAULT_TENANT_CONCURRENCY);
    this.worker = new Worker<DeliveryPayload>(WEBHOOK_QUEUE, (job, token) => this.process(job, token), {
      connection,
      prefix: bullmqPrefix(options.prefix, connection),
      concurrency: options.concurrency ?? DEFAULT_WEBHOOK_CONCURRENCY,
      // An attempt can take the whole timeout; keep the lock well past it.
      lockDuration: Math.max(30_000, (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) * 2),
      maxStalledCount: 5,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) => {
          if (err instanceof RetryAfterError) return err.retryAfterMs;
          // An unexpected failure (PostgreSQL down): soon again, and no later than an outage's length.
          return backoffDelay(ERROR_BACKOFF, attemptsMade - 1);
        },
      },
    });
    // What an outage makes happen on every reconnect and every entry: one line per 10 s each.
    const outages = throttledLogger(options.logger);
    this.worker.on("error", (err) => outages.error({ err: err.message }, "webhook queue connection error"));
    this.worker.on("failed", (job, err) => {
      if (!(err instanceof RetryAfterError))
        outages.warn({ event: job?.data.eventId, err: err.message }, "webhook delivery errored");
    });
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (interval > 0) {
      this.timer = setInterval(
        () => void this.sweepOnce().catch((err: Error) => outages.warn({ err: err.message }, "webhook sweep failed")),
        interval,
      );
      this.timer.unref();
    }
  }

  private async process(job: Job<DeliveryPayload>, token: string | undefined): Promise<void> {
    const tenantId = job.data.tenantId ?? (await this.store.tenantOf(job.data.eventId));
    if (tenantId === undefined) return; // the event is gone (retention deleted it): nothing to send
    if (!this.slots.tryAcquire(tenantId)) return this.park(job, token, tenantId);
    try {
      await this.deliver(job);
    } finally {
      this.wake(this.slots.release(tenantId));
    }
  }

  /**
   * The tenant is at its cap here: give the slot back by moving the entry to the delayed set for a
   * short jittered while (BullMQ counts no attempt for it), rather than hold a slot waiting.
   */
  private async park(job: Job<DeliveryPayload>, token: string | undefined, tenantId: string): Promise<never> {
    // Its next runs need not read the tenant again.
    if (!job.data.tenantId) await job.updateData({ ...job.data, tenantId });
    await job.moveToDelayed(Date.now() + this.slots.park(tenantId, job.id!), token);
    throw new DelayedError();
  }

  /** Puts a parked entry back on the queue now (it may have left the delayed set already: then nothing happens). */
  private wake(entryId: string | undefined): void {
    if (!entryId) return;
    void this.queue.queue
      .getJob(entryId)
      .then((entry) => entry?.promote())
      .catch(() => {});
  }

  private async deliver(job: Job<DeliveryPayload>): Promise<void> {
    const result = await deliverEvent(this.store, job.data.eventId, this.options, { manual: job.data.manual });
    if (result.outcome !== "skipped") this.options.onAttempt?.(result);
    // The delay is the schedule's (or the receiver's Retry-After): see the "webhook" backoff strategy.
    if (result.outcome === "retry")
      throw new RetryAfterError("webhook_retry", result.error ?? "delivery failed", result.retryInMs ?? 0);
    if (result.outcome === "failed")
      this.options.logger.warn(
        { event: job.data.eventId, attempt: result.attempt, err: result.error },
        "webhook delivery failed for good",
      );
  }

  /**
   * At-least-once delivery whatever happens to the queue: an event row is written before its
   * queue entry is added, so a crash between the two, a Redis that lost its data, or an entry that
   * failed for good leaves a pending event that no entry will deliver. This re-adds entries for
   * pending events overdue by `afterMs` that have none (or only a finished one), and brings
   * forward an entry still delayed past the event's own next attempt. Returns how many it re-added.
   */
  sweepOnce(afterMs = this.options.sweepAfterMs ?? DEFAULT_SWEEP_AFTER_MS): Promise<number> {
    this.sweeping ??= this.sweep(afterMs).finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(afterMs: number): Promise<number> {
    const rows = await this.store.overduePending(afterMs);
    const lost: Array<{ id: string; tenantId: string }> = [];
    for (const row of rows) {
      const state = await this.queue.queue.getJobState(row.id);
      if (state === "unknown") lost.push(row);
      else if (state === "failed" || state === "completed") {
        // The entry ended without settling the event (errors until its attempts ran out): start a new one.
        await this.queue.queue.remove(row.id).catch(() => 0);
        lost.push(row);
      } else if (state === "delayed") {
        // Its backoff outlived the event's schedule (errors while PostgreSQL was away): due now.
        await (await this.queue.queue.getJob(row.id))?.promote().catch(() => {});
      }
    }
    await this.queue.enqueue(lost);
    if (lost.length > 0)
      this.options.logger.warn({ events: lost.length }, "re-enqueued webhook events that had no queue entry");
    return lost.length;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sweeping?.catch(() => {});
    await this.worker.close();
  }
}
