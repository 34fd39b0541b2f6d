import { describe, expect, it } from "vitest";
import { TenantStore, WebhookEventStore, type WebhookAttempt } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newWebhookEvent, webhookEventRow } from "./support/rows.ts";

const database = useTestDatabase();
const events = () => new WebhookEventStore(database().pool);

async function recordedEvent() {
  const tenant = await createTenant(database());
  const event = newWebhookEvent(tenant, {});
  await events().insert([event]);
  return { tenant, event };
}

function attempt(eventId: string, overrides: Partial<WebhookAttempt> = {}): WebhookAttempt {
  return {
    eventId,
    jobId: null,
    attempt: 1,
    url: "https://example.com/hook",
    attemptedAt: new Date(),
    statusCode: 500,
    latencyMs: 12,
    error: null,
    responseBody: "oops",
    nextRetryAt: new Date(Date.now() + 60_000),
    status: "pending",
    reschedule: true,
    ...overrides,
  };
}

describe("WebhookEventStore.claimAttempt", () => {
  it("takes the next attempt number of a pending event and returns its body and its tenant's secrets", async () => {
    const { tenant, event } = await recordedEvent();
    const claimed = await events().claimAttempt(event.id, false);
    expect(claimed).toEqual({
      id: event.id,
      jobId: null,
      url: event.url,
      body: event.payload,
      attempts: 1,
      automaticAttempts: 1,
      secret: "whsec_dGVzdA==",
      previousSecrets: [],
      type: event.type,
      batchId: null,
      traceParent: null,
    });
    expect((await events().claimAttempt(event.id, false))?.attempts).toBe(2);

    const tenants = new TenantStore(database().pool, database().prisma);
    const rotated = await tenants.rotateWebhookSecret(tenant, 3600);
    expect(await events().claimAttempt(event.id, false)).toMatchObject({
      attempts: 3,
      secret: rotated!.secret,
      previousSecrets: ["whsec_dGVzdA=="],
    });
    const again = await tenants.rotateWebhookSecret(tenant, 3600);
    expect(await events().claimAttempt(event.id, false)).toMatchObject({
      attempts: 4,
      secret: again!.secret,
      previousSecrets: [rotated!.secret, "whsec_dGVzdA=="],
    });
    // A previous secret past its window signs no more.
    await database().pool.query(
      `update tenants set "previousWebhookSecrets" = jsonb_set("previousWebhookSecrets", '{1,expiresAt}', to_jsonb(now() - interval '1 second')) where id = $1`,
      [tenant],
    );
    expect(await events().claimAttempt(event.id, false)).toMatchObject({
      attempts: 5,
      previousSecrets: [rotated!.secret],
    });
  });

  it("claims a settled event only for a manual redelivery, and nothing for an unknown one", async () => {
    const { event } = await recordedEvent();
    await events().recordAttempt(attempt(event.id, { statusCode: 200, status: "delivered", nextRetryAt: null }));
    expect(await events().claimAttempt(event.id, false)).toBeNull();
    expect((await webhookEventRow(database(), event.id))?.attempts).toBe(0);
    expect((await events().claimAttempt(event.id, true))?.attempts).toBe(1);
    expect(await events().claimAttempt("msg_unknown", true)).toBeNull();
  });

  it("counts a manual redelivery's attempt apart: it numbers the attempts but is no automatic one", async () => {
    const { event } = await recordedEvent();
    expect(await events().claimAttempt(event.id, false)).toMatchObject({ attempts: 1, automaticAttempts: 1 });
    expect(await events().claimAttempt(event.id, true)).toMatchObject({ attempts: 2, automaticAttempts: 1 });
    expect(await events().claimAttempt(event.id, true)).toMatchObject({ attempts: 3, automaticAttempts: 1 });
    expect(await events().claimAttempt(event.id, false)).toMatchObject({ attempts: 4, automaticAttempts: 2 });
  });

  it("gives every concurrent claim its own attempt number", async () => {
    const { event } = await recordedEvent();
    const claims = await Promise.all(Array.from({ length: 8 }, () => events().claimAttempt(event.id, false)));
    expect(claims.map((c) => c?.attempts).sort((a, b) => a! - b!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe("WebhookEventStore.recordAttempt", () => {
  it("records a failed attempt and reschedules the event", async () => {
    const { event } = await recordedEvent();
    const failed = attempt(event.id);
    await events().recordAttempt(failed);
    const row = await webhookEventRow(database(), event.id);
    expect(row).toMatchObject({ status: "pending", nextAttemptAt: failed.nextRetryAt, deliveredAt: null });
    const { rows } = await database().pool.query(
      `select attempt, url, "statusCode", "latencyMs", error, "responseBody", "nextRetryAt", "attemptedAt" from webhook_deliveries where "eventId" = $1`,
      [event.id],
    );
    expect(rows).toEqual([
      {
        attempt: 1,
        url: failed.url,
        statusCode: 500,
        latencyMs: 12,
        error: null,
        responseBody: "oops",
        nextRetryAt: failed.nextRetryAt,
        attemptedAt: failed.attemptedAt,
      },
    ]);
  });

  it("marks the event delivered with its delivery time, or failed when retries are exhausted", async () => {
    const delivered = await recordedEvent();
    await events().recordAttempt(
      attempt(delivered.event.id, { statusCode: 204, responseBody: null, status: "delivered", nextRetryAt: null }),
    );
    const row = await webhookEventRow(database(), delivered.event.id);
    expect(row).toMatchObject({ status: "delivered", nextAttemptAt: null });
    expect(row?.deliveredAt).toBeInstanceOf(Date);

    const exhausted = await recordedEvent();
    await events().recordAttempt(
      attempt(exhausted.event.id, { statusCode: null, error: "timeout", status: "failed", nextRetryAt: null }),
    );
    expect(await webhookEventRow(database(), exhausted.event.id)).toMatchObject({
      status: "failed",
      deliveredAt: null,
      nextAttemptAt: null,
    });
  });

  it("leaves the event's status and schedule alone for a manual redelivery that failed", async () => {
    const { event } = await recordedEvent();
    await events().recordAttempt(attempt(event.id, { statusCode: 200, status: "delivered", nextRetryAt: null }));
    const before = await webhookEventRow(database(), event.id);
    await events().recordAttempt(attempt(event.id, { attempt: 2, status: null, reschedule: false }));
    expect(await webhookEventRow(database(), event.id)).toEqual(before);
    const { rows } = await database().pool.query<{ n: number }>(
      `select count(*)::int as n from webhook_deliveries where "eventId" = $1`,
      [event.id],
    );
    expect(rows[0]!.n).toBe(2);
  });
});
