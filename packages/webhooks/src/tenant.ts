import { newWebhookSecret, type Database } from "@inferline/db";

export interface WebhookSecretView {
  secret: string;
  /** During a rotation window: until when the previous secret still signs (alongside this one). */
  previousSecretExpiresAt?: string;
}

function secretView(row: { secret: string; previousExpiresAt: Date | null } | undefined): WebhookSecretView | null {
  if (!row) return null;
  const view: WebhookSecretView = { secret: row.secret };
  if (row.previousExpiresAt && row.previousExpiresAt.getTime() > Date.now()) view.previousSecretExpiresAt = row.previousExpiresAt.toISOString();
  return view;
}

export async function getWebhookSecret(db: Database, tenantId: string): Promise<WebhookSecretView | null> {
  const { rows } = await db.pool.query<{ secret: string; previousExpiresAt: Date | null }>(
    `select "webhookSecret" as secret, "previousSecretExpiresAt" as "previousExpiresAt" from tenants where id = $1`,
    [tenantId],
  );
  return secretView(rows[0]);
}

/**
 * A new signing secret; the current one becomes the previous one and keeps signing (a second
 * signature in the same header) for `windowSeconds`, so receivers can switch without a gap.
 */
export async function rotateWebhookSecret(db: Database, tenantId: string, windowSeconds: number): Promise<WebhookSecretView | null> {
  const { rows } = await db.pool.query<{ secret: string; previousExpiresAt: Date | null }>(
    `update tenants set "previousWebhookSecret" = "webhookSecret", "webhookSecret" = $2,
       "previousSecretExpiresAt" = now() + make_interval(secs => $3::double precision)
     where id = $1
     returning "webhookSecret" as secret, "previousSecretExpiresAt" as "previousExpiresAt"`,
    [tenantId, newWebhookSecret(), windowSeconds],
  );
  return secretView(rows[0]);
}

export interface WebhookEventView {
  id: string;
  type: string;
  url: string;
  status: string;
  attempts: number;
  /** Manual redeliveries asked for so far (bounded by the API's WEBHOOK_MAX_REDELIVERIES). */
  redeliveries: number;
  createdAt: string;
  deliveredAt?: string;
  nextAttemptAt?: string;
}

export interface WebhookAttemptView {
  eventId: string;
  attempt: number;
  attemptedAt: string;
  url: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  responseBody: string | null;
  nextRetryAt: string | null;
}

/** A job's webhook events and every attempt, oldest first; null when the job is not the tenant's. */
export async function listJobWebhooks(db: Database, tenantId: string, jobId: string): Promise<{ events: WebhookEventView[]; attempts: WebhookAttemptView[] } | null> {
  const owned = await db.pool.query(`select 1 from jobs where id = $1 and "tenantId" = $2`, [jobId, tenantId]);
  if (owned.rowCount === 0) return null;
  // One snapshot for both reads: two parallel reads could see an event's final status without
  // the attempt that was committed with it.
  const [events, attempts] = await db.transaction(async (client) => {
    await client.query("set transaction isolation level repeatable read read only");
    const events = await client.query<{ id: string; type: string; url: string; status: string; attempts: number; redeliveries: number; createdAt: Date; deliveredAt: Date | null; nextAttemptAt: Date | null }>(
      `select id, type, url, status, attempts, redeliveries, "createdAt", "deliveredAt", "nextAttemptAt" from webhook_events
       where "jobId" = $1 and "tenantId" = $2 order by "createdAt", id`,
      [jobId, tenantId],
    );
    const attempts = await client.query<{ eventId: string; attempt: number; attemptedAt: Date; url: string; statusCode: number | null; latencyMs: number | null; error: string | null; responseBody: string | null; nextRetryAt: Date | null }>(
      `select d."eventId", d.attempt, d."attemptedAt", d.url, d."statusCode", d."latencyMs", d.error, d."responseBody", d."nextRetryAt"
       from webhook_deliveries d join webhook_events e on e.id = d."eventId"
       where e."jobId" = $1 and e."tenantId" = $2 order by d."attemptedAt", d.attempt`,
      [jobId, tenantId],
    );
    return [events, attempts] as const;
  });
  return {
    events: events.rows.map((e) => ({
      id: e.id,
      type: e.type,
      url: e.url,
      status: e.status,
      attempts: e.attempts,
      redeliveries: e.redeliveries,
      createdAt: e.createdAt.toISOString(),
      ...(e.deliveredAt ? { deliveredAt: e.deliveredAt.toISOString() } : {}),
      ...(e.nextAttemptAt && e.status === "pending" ? { nextAttemptAt: e.nextAttemptAt.toISOString() } : {}),
    })),
    attempts: attempts.rows.map((a) => ({ ...a, attemptedAt: a.attemptedAt.toISOString(), nextRetryAt: a.nextRetryAt?.toISOString() ?? null })),
  };
}

/** The id of the job's latest event; undefined when the job is not the tenant's, null when it has no event. */
export async function lastJobEventId(db: Database, tenantId: string, jobId: string): Promise<string | null | undefined> {
  const { rows } = await db.pool.query<{ event: string | null }>(
    `select (select e.id from webhook_events e where e."jobId" = j.id order by e."createdAt" desc, e.id desc limit 1) as event
     from jobs j where j.id = $1 and j."tenantId" = $2`,
    [jobId, tenantId],
  );
  return rows.length === 0 ? undefined : (rows[0]!.event ?? null);
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

/**
 * Counts one manual redelivery of the job's latest event, unless it has had `max` already; one
 * statement, so concurrent requests cannot pass the limit together.
 */
export async function claimRedelivery(db: Database, tenantId: string, jobId: string, max: number): Promise<RedeliveryClaim> {
  const { rows } = await db.pool.query<{ event: string | null; redeliveries: number | null }>(
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
  return row.redeliveries === null ? { eventId: row.event, limitReached: true } : { eventId: row.event, redeliveries: row.redeliveries };
}

/** Gives back a redelivery counted by claimRedelivery whose queue entry could not be added. */
export async function refundRedelivery(db: Database, eventId: string): Promise<void> {
  await db.pool.query(`update webhook_events set redeliveries = greatest(redeliveries - 1, 0) where id = $1`, [eventId]);
}
