import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore, WebhookEventStore, type WebhookAttempt } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob, newWebhookEvent, orderEvents } from "./support/rows.ts";

const database = useTestDatabase();
const events = () => new WebhookEventStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);

async function jobOf(tenant: string): Promise<string> {
  const job = newJob(tenant);
  await jobs().insertMany([job]);
  return job.id;
}

function attempt(eventId: string, jobId: string, n: number, at: Date): WebhookAttempt {
  return {
    eventId,
    jobId,
    attempt: n,
    url: "https://example.com/hook",
    attemptedAt: at,
    statusCode: 500,
    latencyMs: 5,
    error: null,
    responseBody: null,
    nextRetryAt: null,
    status: "pending",
    reschedule: false,
  };
}

describe("WebhookEventStore.listForJob", () => {
  it("returns the job's events and every attempt, oldest first", async () => {
    const tenant = await createTenant(database());
    const jobId = await jobOf(tenant);
    const [first, second] = [
      newWebhookEvent(tenant, { jobId }, { type: "job.succeeded" }),
      newWebhookEvent(tenant, { jobId }, { type: "job.canceled" }),
    ];
    await events().insert([first, second]);
    await orderEvents(database(), [first.id, second.id]);
    const t = Date.UTC(2026, 0, 1);
    await events().recordAttempt(attempt(first.id, jobId, 2, new Date(t + 2000)));
    await events().recordAttempt(attempt(first.id, jobId, 1, new Date(t)));
    await events().recordAttempt(attempt(second.id, jobId, 1, new Date(t + 1000)));

    const listed = await events().listForJob(tenant, jobId);
    expect(listed?.events.map((e) => [e.id, e.type, e.status])).toEqual([
      [first.id, "job.succeeded", "pending"],
      [second.id, "job.canceled", "pending"],
    ]);
    expect(listed?.attempts.map((a) => [a.eventId, a.attempt])).toEqual([
      [first.id, 1],
      [second.id, 1],
      [first.id, 2],
    ]);
  });

  it("returns empty lists for the tenant's job without events, and null for another tenant's job or an unknown one", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const jobId = await jobOf(tenant);
    expect(await events().listForJob(tenant, jobId)).toEqual({ events: [], attempts: [] });
    await events().insert([newWebhookEvent(tenant, { jobId })]);
    expect(await events().listForJob(other, jobId)).toBeNull();
    expect(await events().listForJob(tenant, crypto.randomUUID())).toBeNull();
  });
});

describe("WebhookEventStore.lastJobEventId", () => {
  it("names the job's latest event; null when it has none, undefined when the job is not the tenant's", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const jobId = await jobOf(tenant);
    expect(await events().lastJobEventId(tenant, jobId)).toBeNull();
    const [first, second] = [newWebhookEvent(tenant, { jobId }), newWebhookEvent(tenant, { jobId })];
    await events().insert([second, first]);
    await orderEvents(database(), [first.id, second.id]);
    expect(await events().lastJobEventId(tenant, jobId)).toBe(second.id);
    expect(await events().lastJobEventId(other, jobId)).toBeUndefined();
  });
});
