import crypto from "node:crypto";
import { Queue, type JobsOptions } from "bullmq";
import { addEntries, bullmqPrefix, WEBHOOK_QUEUE, type RedisConnection } from "@inferline/queue";
import { MAX_WEBHOOK_ATTEMPTS } from "./schedule.ts";

/** Payload of one entry on the webhooks queue. */
export interface DeliveryPayload {
  eventId: string;
  /**
   * The event's tenant, for the per-tenant cap on deliveries in flight. Producers that know it
   * carry it; without it (older entries, producers that hold only ids) the worker reads it from
   * webhook_events.
   */
  tenantId?: string;
  /** A redelivery asked for by the tenant: one attempt, whatever the event's status. */
  manual?: boolean;
}

/** An event to enqueue: its id, or its id with its tenant (a RecordedEvent fits). */
export type EventRef = string | { id: string; tenantId?: string };

/**
 * Upper bound on BullMQ attempts of one entry. The retry schedule itself is applied by the
 * delivery processor (which knows it): it stops an entry by returning, so producers (the API, the
 * worker) need not share the schedule's configuration. Each scheduled attempt uses one BullMQ
 * attempt, and so does each unexpected failure (PostgreSQL down): twice the longest schedule
 * leaves the longest one as many again for those.
 */
export const MAX_QUEUE_ATTEMPTS = 2 * MAX_WEBHOOK_ATTEMPTS;

/** Producer side of the webhooks queue: the API and the worker both enqueue through this. */
export class WebhookQueue {
  readonly queue: Queue<DeliveryPayload>;

  constructor(connection: RedisConnection, prefix: string) {
    this.queue = new Queue<DeliveryPayload>(WEBHOOK_QUEUE, { connection, prefix: bullmqPrefix(prefix, connection) });
    this.queue.on("error", () => {});
  }

  static readonly entryOptions: JobsOptions = {
    attempts: MAX_QUEUE_ATTEMPTS,
    // "webhook" is the worker's custom strategy: the delay the processor computed from the schedule and Retry-After.
    backoff: { type: "webhook" },
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600 },
  };

  /**
   * One queue entry per event, whose BullMQ job id is the event id: adding an event that already
   * has an entry is a no-op, so the sweep and a late producer can never deliver twice.
   */
  async enqueue(events: readonly EventRef[]): Promise<void> {
    await addEntries(
      this.queue,
      events.map((event) => {
        const data: DeliveryPayload =
          typeof event === "string"
            ? { eventId: event }
            : { eventId: event.id, ...(event.tenantId ? { tenantId: event.tenantId } : {}) };
        return { name: "deliver", data, opts: { ...WebhookQueue.entryOptions, jobId: data.eventId } };
      }),
    );
  }

  /** A single extra attempt of an event (same webhook-id), on an entry of its own. */
  async redeliver(eventId: string, tenantId?: string): Promise<void> {
    await this.queue.add(
      "redeliver",
      { eventId, manual: true, ...(tenantId ? { tenantId } : {}) },
      {
        jobId: `${eventId}-redeliver-${crypto.randomUUID()}`,
        attempts: 1,
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
      },
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
