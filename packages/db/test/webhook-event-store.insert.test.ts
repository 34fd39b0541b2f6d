import { describe, expect, it } from "vitest";
import { JobStore, WebhookEventStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob, newWebhookEvent, webhookEventRow } from "./support/rows.ts";

const database = useTestDatabase();
const events = () => new WebhookEventStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);

describe("WebhookEventStore.insert", () => {
  it("records events pending, their first attempt due at once, and returns them", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await jobs().insertMany([job]);
    const event = newWebhookEvent(tenant, { jobId: job.id }, { type: "job.failed" });
    expect(await events().insert([event])).toEqual([{ id: event.id, tenantId: tenant, type: "job.failed" }]);
    const row = await webhookEventRow(database(), event.id);
    expect(row).toMatchObject({ status: "pending", attempts: 0, redeliveries: 0, deliveredAt: null });
    expect(row?.nextAttemptAt).toBeInstanceOf(Date);
    const { rows } = await database().pool.query<{ payload: string; url: string; jobId: string }>(
      `select payload::text as payload, url, "jobId" from webhook_events where id = $1`,
      [event.id],
    );
    expect(rows[0]).toEqual({ payload: event.payload, url: event.url, jobId: job.id }); // the body's bytes as given
  });

  it("records an event once: a second insert with its id returns nothing and changes nothing", async () => {
    const tenant = await createTenant(database());
    const event = newWebhookEvent(
      tenant,
      { batchId: "00000000-0000-4000-8000-000000000000" },
      { type: "batch.completed" },
    );
    await events().insert([event]);
    expect(await events().insert([{ ...event, url: "https://elsewhere.example/hook" }])).toEqual([]);
    const { rows } = await database().pool.query<{ url: string }>(`select url from webhook_events where id = $1`, [
      event.id,
    ]);
    expect(rows[0]!.url).toBe(event.url);
  });

  it("returns a racing event to exactly one of the inserts", async () => {
    const tenant = await createTenant(database());
    const event = newWebhookEvent(tenant, {});
    const results = await Promise.all(
      Array.from({ length: 4 }, () => events().insert([event, newWebhookEvent(tenant, {})])),
    );
    expect(results.flat().filter((r) => r.id === event.id)).toHaveLength(1);
    expect(results.map((r) => r.length).sort()).toEqual([1, 1, 1, 2]);
  });

  it("inserts nothing for no events, and nothing when the caller's transaction rolls back", async () => {
    expect(await events().insert([])).toEqual([]);
    const tenant = await createTenant(database());
    const event = newWebhookEvent(tenant, {});
    await database()
      .transaction(async (client) => {
        expect(await events().insert([event], client)).toHaveLength(1);
        throw new Error("abandon");
      })
      .catch(() => {});
    expect(await webhookEventRow(database(), event.id)).toBeUndefined();
  });
});

describe("WebhookEventStore.jobsForEvents", () => {
  it("reads the jobs as their events show them, without their inputs", async () => {
    const tenant = await createTenant(database());
    const [a, b] = [newJob(tenant, { metadata: { k: "v" } }), newJob(tenant)];
    await jobs().insertMany([a, b]);
    await jobs().finish([{ id: a.id, status: "succeeded", resultJson: '{"y":1}' }]);
    const read = await events().jobsForEvents([a.id, b.id]);
    expect(read).toHaveLength(2);
    expect(read.find((j) => j.id === a.id)).toMatchObject({
      tenantId: tenant,
      status: "succeeded",
      result: { y: 1 },
      metadata: { k: "v" },
    });
    expect(read.every((j) => !("inputs" in j))).toBe(true);
  });
});
