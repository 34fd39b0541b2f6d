import type { JobWebhookStore, WebhookSecret, WebhookSecretStore } from "@inferline/db";

export interface WebhookSecretView {
  secret: string;
  /** During a rotation window: until when a previous secret still signs alongside this one (the latest of their expiries). */
  previousSecretExpiresAt?: string;
}

function secretView(row: WebhookSecret | null): WebhookSecretView | null {
  if (!row) return null;
  const view: WebhookSecretView = { secret: row.secret };
  if (row.previousExpiresAt && row.previousExpiresAt.getTime() > Date.now())
    view.previousSecretExpiresAt = row.previousExpiresAt.toISOString();
  return view;
}

export async function getWebhookSecret(
  tenants: Pick<WebhookSecretStore, "webhookSecret">,
  tenantId: string,
): Promise<WebhookSecretView | null> {
  return secretView(await tenants.webhookSecret(tenantId));
}

/**
 * A new signing secret; the current one keeps signing (one more signature in the same header) for
 * `windowSeconds`, and each earlier one until its own window ends, so receivers can switch
 * without a gap however often the secret is rotated.
 */
export async function rotateWebhookSecret(
  tenants: Pick<WebhookSecretStore, "rotateWebhookSecret">,
  tenantId: string,
  windowSeconds: number,
): Promise<WebhookSecretView | null> {
  return secretView(await tenants.rotateWebhookSecret(tenantId, windowSeconds));
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
export async function listJobWebhooks(
  events: Pick<JobWebhookStore, "listForJob">,
  tenantId: string,
  jobId: string,
): Promise<{ events: WebhookEventView[]; attempts: WebhookAttemptView[] } | null> {
  const record = await events.listForJob(tenantId, jobId);
  if (!record) return null;
  return {
    events: record.events.map((e) => ({
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
    attempts: record.attempts.map((a) => ({
      ...a,
      attemptedAt: a.attemptedAt.toISOString(),
      nextRetryAt: a.nextRetryAt?.toISOString() ?? null,
    })),
  };
}
