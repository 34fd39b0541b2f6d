import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore, WebhookEventStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob, newWebhookEvent, orderEvents, webhookEventRow } from "./support/rows.ts";

const database = useTestDatabase();
const events = () => new WebhookEventStore(database().pool);

/** A job of a new tenant with `n` events; returns their ids, oldest first. */
async function jobWithEvents(n: number) {
  const tenant = await createTenant(database());
  const job = newJob(tenant);
  await new JobStore(database().pool, database().prisma).insertMany([job]);
  const recorded = Array.from({ length: n }, () => newWebhookEvent(tenant, { jobId: job.id }));
  await events().insert(recorded);
  const ids = recorded.map((e) => e.id);
  await orderEvents(database(), ids);
  return { tenant, jobId: job.id, eventIds: ids };
}

describe("WebhookEventStore.claimRedelivery", () => {
  it("counts redeliveries of the job's latest event up to the limit", async () => {
    const { tenant, jobId, eventIds } = await jobWithEvents(2);
    const latest = eventIds[1]!;
    expect(await events().claimRedelivery(tenant, jobId, 2)).toEqual({ eventId: latest, redeliveries: 1 });
    expect(await events().claimRedelivery(tenant, jobId, 2)).toEqual({ eventId: latest, redeliveries: 2 });
    expect(await events().claimRedelivery(tenant, jobId, 2)).toEqual({ eventId: latest, limitReached: true });
    expect((await webhookEventRow(database(), latest))?.redeliveries).toBe(2);
    expect((await webhookEventRow(database(), eventIds[0]!))?.redeliveries).toBe(0);
  });

  it("never passes the limit under concurrent requests", async () => {
    const { tenant, jobId, eventIds } = await jobWithEvents(1);
    const claims = await Promise.all(Array.from({ length: 12 }, () => events().claimRedelivery(tenant, jobId, 3)));
    const counted = claims.flatMap((c) => ("redeliveries" in c ? [c.redeliveries] : []));
    expect(counted.sort()).toEqual([1, 2, 3]);
    expect(claims.filter((c) => "limitReached" in c)).toHaveLength(9);
    expect((await webhookEventRow(database(), eventIds[0]!))?.redeliveries).toBe(3);
  });

  it("answers notFound for another tenant's job or an unknown one, and for a job without events", async () => {
    const { jobId } = await jobWithEvents(1);
    const other = await createTenant(database());
    expect(await events().claimRedelivery(other, jobId, 5)).toEqual({ notFound: "job" });
    expect(await events().claimRedelivery(other, crypto.randomUUID(), 5)).toEqual({ notFound: "job" });
    const quiet = await jobWithEvents(0);
    expect(await events().claimRedelivery(quiet.tenant, quiet.jobId, 5)).toEqual({ notFound: "event" });
  });
});

describe("WebhookEventStore.refundRedelivery", () => {
  it("gives a counted redelivery back, never below zero", async () => {
    const { tenant, jobId, eventIds } = await jobWithEvents(1);
    const id = eventIds[0]!;
    await events().claimRedelivery(tenant, jobId, 1);
    expect(await events().claimRedelivery(tenant, jobId, 1)).toMatchObject({ limitReached: true });
    await events().refundRedelivery(id);
    expect(await events().claimRedelivery(tenant, jobId, 1)).toEqual({ eventId: id, redeliveries: 1 });
    await events().refundRedelivery(id);
    await events().refundRedelivery(id);
    expect((await webhookEventRow(database(), id))?.redeliveries).toBe(0);
  });
});
