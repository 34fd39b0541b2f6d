import crypto from "node:crypto";
import type pg from "pg";
import type { WebhookEventType } from "@inferline/contracts";
import { inTransaction, type Queryable } from "./database.ts";
import { columnList, VIEW_FIELDS, type JobViewFields } from "./jobs/columns.ts";

/** An event as recording it returns it: what its queue entry carries. */
export interface RecordedEvent {
  id: string;
  tenantId: string;
  type: WebhookEventType;
}

/** A webhook event to record; `payload` is the body every attempt sends, as JSON text. */
export interface NewWebhookEvent {
  id: string;
  tenantId: string;
  jobId: string | null;
  batchId: string | null;
  type: WebhookEventType;
  url: string;
  payload: string;
}

/** An event whose attempt number was just taken (see claimAttempt), with its tenant's signing secrets. */
export interface ClaimedWebhookEvent {
  id: string;
  jobId: string | null;
  url: string;
  body: string;
  /** Attempts made, this one included: its number. */
  attempts: number;
  /**
   * Automatic attempts made (manual redeliveries left out), this one included when it is one:
   * where the retry schedule stands.
   */
  automaticAttempts: number;
  secret: string;
  /** The tenant's previous secrets still signing (a rotation's overlap window), newest first. */
  previousSecrets: string[];
  /** The event's type (job.succeeded, batch.completed, ...). */
  type: string;
  /** Its batch, for a batch event. */
  batchId: string | null;
  /** The W3C traceparent stored with its job or batch (OpenTelemetry; null: not traced), which the attempt's span continues. */
  traceParent: string | null;
}

/** One attempt as recordAttempt writes it, with what it does to its event. */
export interface WebhookAttempt {
  eventId: string;
  jobId: string | null;
  attempt: number;
  url: string;
  attemptedAt: Date;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  responseBody: string | null;
  nextRetryAt: Date | null;
  /** The event's new status; null leaves it as it is (a manual redelivery that failed). */
  status: string | null;
  /** Whether the event's nextAttemptAt becomes nextRetryAt (not for a manual redelivery). */
  reschedule: boolean;
}

export interface WebhookEventRow {
  id: string;
  type: string;
  url: string;
  status: string;
  attempts: number;
  redeliveries: number;
  createdAt: Date;
  deliveredAt: Date | null;
  nextAttemptAt: Date | null;
}

export interface WebhookAttemptRow {
  eventId: string;
  attempt: number;
  attemptedAt: Date;
  url: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  responseBody: string | null;
  nextRetryAt: Date | null;
}

export type RedeliveryClaim =
  /** Counted: enqueue a redelivery of `eventId`. */
  | { eventId: string; redeliveries: number }
  /** The job is not the tenant's. */
  | { notFound: "job" }
  /** The job has no webhook event. */
  | { notFound: "event" }
  /** The event has had `max` redeliveries already. */
  | { eventId: string; limitReached: true };

/** A job as its events show it (see toJobView), and its tenant. */
export type EventJob = JobViewFields & { tenantId: string };

/** Reads EventJobs: every column the view reads, not the inputs, which can be large and are not shown. */
const EVENT_JOBS_TEXT = `select ${columnList([...VIEW_FIELDS, "tenantId"])} from jobs where id = any($1::uuid[])`;

/**
 * `webhook_events` and `webhook_deliveries`: events recorded in the transaction that finished
 * their subject, delivery attempts claimed and recorded one statement each, a job's record as
 * the API shows it, and the counter of manual redeliveries.
 */
export class WebhookEventStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The jobs as their events show them (every column toJobView reads), in the caller's transaction. */
  async jobsForEvents(ids: string[], q: Queryable = this.pool): Promise<EventJob[]> {
    const { rows } = await q.query<EventJob>(EVENT_JOBS_TEXT, [ids]);
    return rows;
  }

  /**
   * Records events in one multi-row insert; an event recorded already (its id is derived from its
   * subject and type) is skipped, so it is returned only by the call that recorded it.
   */
  async insert(events: NewWebhookEvent[], q: Queryable = this.pool): Promise<RecordedEvent[]> {
    if (events.length === 0) return [];
    // nextAttemptAt = now: the first attempt is due at once; the sweep looks for pending events overdue by some margin.
    const { rows } = await q.query<RecordedEvent>(
      `insert into webhook_events (id, "tenantId", "jobId", "batchId", type, url, payload, "nextAttemptAt")
     select u.id, u.tenant, u.job, u.batch, u.type, u.url, u.payload, now()
     from unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::json[]) as u(id, tenant, job, batch, type, url, payload)
     on conflict (id) do nothing
     returning id, "tenantId", type`,
      [
        events.map((e) => e.id),
        events.map((e) => e.tenantId),
        events.map((e) => e.jobId),
        events.map((e) => e.batchId),
        events.map((e) => e.type),
        events.map((e) => e.url),
        events.map((e) => e.payload),
      ],
    );
    return rows;
  }

  /**
   * Takes the next attempt number of a pending event (of any event when `manual`, counted apart
   * so that it uses up none of the automatic retries) and reads what the attempt sends; null when
   * there is no such event.
   */
  async claimAttempt(eventId: string, manual: boolean): Promise<ClaimedWebhookEvent | null> {
    const { rows } = await this.pool.query<ClaimedWebhookEvent>(
      `update webhook_events e set attempts = e.attempts + 1, "manualAttempts" = e."manualAttempts" + $2::boolean::int
     from tenants t
     where e.id = $1 and t.id = e."tenantId" and ($2::boolean or e.status = 'pending')
     returning e.id, e."jobId", e.url, e.payload::text as body, e.attempts,
       e.attempts - e."manualAttempts" as "automaticAttempts", t."webhookSecret" as secret,
       array(select p->>'secret' from jsonb_array_elements(t."previousWebhookSecrets") as p
         where (p->>'expiresAt')::timestamptz > now() order by (p->>'expiresAt')::timestamptz desc) as "previousSecrets", e.type, e."batchId",
       coalesce((select j.trace_parent from jobs j where j.id = e."jobId"), (select b.trace_parent from batches b where b.id = e."batchId")) as "traceParent"`,
      [eventId, manual],
    );
    return rows[0] ?? null;
  }

  /** Records an attempt together with its event's new status, in one statement. */
  async recordAttempt(a: WebhookAttempt): Promise<void> {
    await this.pool.query(
      `with attempt as (
       insert into webhook_deliveries (id, "eventId", "jobId", attempt, url, "attemptedAt", "statusCode", "latencyMs", error, "responseBody", "nextRetryAt")
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     )
     update webhook_events set status = coalesce($12::text, status),
       "nextAttemptAt" = case when $13::boolean then $11::timestamptz else "nextAttemptAt" end,
       "deliveredAt" = case when $12::text = 'delivered' then now() else "deliveredAt" end
     where id = $2`,
      [
        crypto.randomUUID(),
        a.eventId,
        a.jobId,
        a.attempt,
        a.url,
        a.attemptedAt,
        a.statusCode,
        a.latencyMs,
        a.error,
        a.responseBody,
        a.nextRetryAt,
        a.status,
        a.reschedule,
      ],
    );
  }

  /** The event's tenant; undefined when the event is gone. */
  async tenantOf(eventId: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ tenantId: string }>(
      `select "tenantId" from webhook_events where id = $1`,
      [eventId],
    );
    return rows[0]?.tenantId;
  }

  /** Pending events whose next attempt is overdue by more than `afterMs`, most overdue first, at most 1000. */
  async overduePending(afterMs: number): Promise<Array<{ id: string; tenantId: string }>> {
    const { rows } = await this.pool.query<{ id: string; tenantId: string }>(
      `select id, "tenantId" from webhook_events where status = 'pending' and "nextAttemptAt" < now() - make_interval(secs => $1::double precision / 1000)
       order by "nextAttemptAt" limit 1000`,
      [afterMs],
    );
    return rows;
  }

  /** A job's events and every attempt, oldest first; null when the job is not the tenant's. */
  async listForJob(
    tenantId: string,
    jobId: string,
  ): Promise<{ events: WebhookEventRow[]; attempts: WebhookAttemptRow[] } | null> {
    const owned = await this.pool.query(`select 1 from jobs where id = $1 and "tenantId" = $2`, [jobId, tenantId]);
    if (owned.rowCount === 0) return null;
    // One snapshot for both reads: two parallel reads could see an event's final status without
    // the attempt that was committed with it.
    return inTransaction(this.pool, async (client) => {
      await client.query("set transaction isolation level repeatable read read only");
      const events = await client.query<WebhookEventRow>(
        `select id, type, url, status, attempts, redeliveries, "createdAt", "deliveredAt", "nextAttemptAt" from webhook_events
       where "jobId" = $1 and "tenantId" = $2 order by "createdAt", id`,
        [jobId, tenantId],
      );
      const attempts = await client.query<WebhookAttemptRow>(
        `select d."eventId", d.attempt, d."attemptedAt", d.url, d."statusCode", d."latencyMs", d.error, d."responseBody", d."nextRetryAt"
       from webhook_deliveries d join webhook_events e on e.id = d."eventId"
       where e."jobId" = $1 and e."tenantId" = $2 order by d."attemptedAt", d.attempt`,
        [jobId, tenantId],
      );
      return { events: events.rows, attempts: attempts.rows };
    });
  }

  /** The id of the job's latest event; undefined when the job is not the tenant's, null when it has no event. */
  async lastJobEventId(tenantId: string, jobId: string): Promise<string | null | undefined> {
    const { rows } = await this.pool.query<{ event: string | null }>(
      `select (select e.id from webhook_events e where e."jobId" = j.id order by e."createdAt" desc, e.id desc limit 1) as event
     from jobs j where j.id = $1 and j."tenantId" = $2`,
      [jobId, tenantId],
    );
    return rows.length === 0 ? undefined : (rows[0]!.event ?? null);
  }

  /**
   * Counts one manual redelivery of the job's latest event, unless it has had `max` already; one
   * statement, so concurrent requests cannot pass the limit together.
   */
  async claimRedelivery(tenantId: string, jobId: string, max: number): Promise<RedeliveryClaim> {
    const { rows } = await this.pool.query<{ event: string | null; redeliveries: number | null }>(
      `with target as (
       select (select e.id from webhook_events e where e."jobId" = j.id order by e."createdAt" desc, e.id desc limit 1) as event
       from jobs j where j.id = $1 and j."tenantId" = $2
     ), counted as (
       update webhook_events e set redeliveries = e.redeliveries + 1
       from target t where e.id = t.event and e.redeliveries < $3
       returning e.redeliveries
     )
     select t.event, (select redeliveries from counted) as redeliveries from target t`,
      [jobId, tenantId, max],
    );
    const row = rows[0];
    if (!row) return { notFound: "job" };
    if (row.event === null) return { notFound: "event" };
    return row.redeliveries === null
      ? { eventId: row.event, limitReached: true }
      : { eventId: row.event, redeliveries: row.redeliveries };
  }

  /** Gives back a redelivery counted by claimRedelivery whose queue entry could not be added. */
  async refundRedelivery(eventId: string): Promise<void> {
    await this.pool.query(`update webhook_events set redeliveries = greatest(redeliveries - 1, 0) where id = $1`, [
      eventId,
    ]);
  }
}

/** What recording events needs (packages/webhooks' events.ts), in the transaction that finished their subjects. */
export type WebhookEventRecorder = Pick<WebhookEventStore, "jobsForEvents" | "insert">;

/** What one delivery attempt touches (packages/webhooks' deliverEvent). */
export type WebhookDeliveryStore = Pick<WebhookEventStore, "claimAttempt" | "recordAttempt">;

/** What the webhook worker reads besides its deliveries: an entry's tenant, and the sweep's overdue events. */
export type WebhookWorkerStore = WebhookDeliveryStore & Pick<WebhookEventStore, "tenantOf" | "overduePending">;

/** What the API's webhook routes read and count: a job's record and its manual redeliveries. */
export type JobWebhookStore = Pick<
  WebhookEventStore,
  "listForJob" | "lastJobEventId" | "claimRedelivery" | "refundRedelivery"
>;
