import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Database, RetentionStore } from "@inferline/db";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";
import { createBatch, createTenant, newWebhookEvent } from "./support/rows.ts";

// The retention deletes reach every row older than their cutoff, whoever wrote it: so each test
// here has a database of its own, and its counts are exact.
let testDb: TestDatabase;
let db: Database;
beforeEach(async () => {
  testDb = await createTestDatabase();
  db = new Database(testDb.url, { poolSize: 4 });
});
afterEach(async () => {
  await db?.close();
  await testDb?.drop();
});

const store = () => new RetentionStore(db.pool);
const CUTOFF = new Date("2026-06-01T00:00:00Z");
const BEFORE = "2026-05-01T00:00:00Z";
const AFTER = "2026-06-15T00:00:00Z";
let seq = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++seq).padStart(12, "0")}`;

/** A job row with the given status and times (completedAt null for a job not finished). */
async function job(tenantId: string, status: string, createdAt: string, completedAt: string | null): Promise<string> {
  const id = uuid();
  await db.pool.query(
    `insert into jobs (id, "tenantId", model, version, inputs, status, "createdAt", "completedAt") values ($1, $2, 'iris', '1', '[]', $3::"JobStatus", $4, $5)`,
    [id, tenantId, status, createdAt, completedAt],
  );
  return id;
}

/** A webhook event of a job, with its status and creation time. */
async function event(tenantId: string, jobId: string | null, status: string, createdAt: string): Promise<string> {
  const e = newWebhookEvent(tenantId, jobId ? { jobId } : {});
  await db.pool.query(
    `insert into webhook_events (id, "tenantId", "jobId", type, url, payload, status, "createdAt") values ($1, $2, $3, 'job.succeeded', $4, '{}', $5, $6)`,
    [e.id, tenantId, jobId, e.url, status, createdAt],
  );
  return e.id;
}

async function ids(table: string): Promise<string[]> {
  return (await db.pool.query<{ id: string }>(`select id::text from ${table} order by id`)).rows.map((r) => r.id);
}

/** Repeats a delete until a page comes back short, as the retention pass does; returns each page's count. */
async function drain(remove: (limit: number) => Promise<number>, limit: number): Promise<number[]> {
  const pages: number[] = [];
  for (;;) {
    const n = await remove(limit);
    pages.push(n);
    if (n < limit) return pages;
  }
}

describe("RetentionStore.deleteFinishedJobs", () => {
  it("deletes jobs created and finished before the cutoff, a page at a time, and keeps the rest", async () => {
    const tenant = await createTenant(db);
    const gone = [
      await job(tenant, "succeeded", BEFORE, BEFORE),
      await job(tenant, "failed", BEFORE, BEFORE),
      await job(tenant, "canceled", BEFORE, BEFORE),
    ];
    const kept = [
      await job(tenant, "queued", BEFORE, null), // never finished
      await job(tenant, "running", BEFORE, null),
      await job(tenant, "succeeded", BEFORE, AFTER), // finished inside the window
      await job(tenant, "succeeded", AFTER, AFTER),
    ];
    expect(await drain((limit) => store().deleteFinishedJobs(CUTOFF, limit), 2)).toEqual([2, 1]);
    expect(await ids("jobs")).toEqual(kept.sort());
    expect(gone.every((id) => !kept.includes(id))).toBe(true);
  });

  it("keeps a job whose webhook is still pending, and deletes one whose events are settled, with its attempts", async () => {
    const tenant = await createTenant(db);
    const [pending, delivered, failed] = [
      await job(tenant, "succeeded", BEFORE, BEFORE),
      await job(tenant, "succeeded", BEFORE, BEFORE),
      await job(tenant, "failed", BEFORE, BEFORE),
    ];
    await event(tenant, pending, "delivered", BEFORE); // an older event settled, a newer one pending
    await event(tenant, pending, "pending", BEFORE);
    const settled = await event(tenant, delivered, "delivered", BEFORE);
    await event(tenant, failed, "failed", BEFORE);
    await db.pool.query(
      `insert into webhook_deliveries (id, "eventId", "jobId", attempt, url) values (gen_random_uuid(), $1, $2, 1, 'https://example.com')`,
      [settled, delivered],
    );

    expect(await store().deleteFinishedJobs(CUTOFF, 100)).toBe(2);
    expect(await ids("jobs")).toEqual([pending]);
    expect(await ids("webhook_deliveries")).toEqual([]);
  });

  it("counts each job once when two workers delete at the same time", async () => {
    const tenant = await createTenant(db);
    for (let i = 0; i < 10; i++) await job(tenant, "succeeded", BEFORE, BEFORE);
    const pages = await Promise.all([
      drain((limit) => store().deleteFinishedJobs(CUTOFF, limit), 3),
      drain((limit) => store().deleteFinishedJobs(CUTOFF, limit), 3),
    ]);
    expect(pages.flat().reduce((a, b) => a + b, 0)).toBe(10);
    expect(await ids("jobs")).toEqual([]);
  });
});

describe("RetentionStore.deleteCompletedBatches", () => {
  it("deletes batches created and completed before the cutoff, with their chunks, and keeps the rest", async () => {
    const tenant = await createTenant(db);
    const [old, unfinished, recent] = [
      await createBatch(db, tenant, { sizes: [2, 2] }),
      await createBatch(db, tenant),
      await createBatch(db, tenant),
    ];
    await db.pool.query(`update batches set "createdAt" = $2, "completedAt" = $3 where id = $1`, [
      old.batchId,
      BEFORE,
      BEFORE,
    ]);
    await db.pool.query(`update batches set "createdAt" = $2 where id = $1`, [unfinished.batchId, BEFORE]);
    await db.pool.query(`update batches set "createdAt" = $2, "completedAt" = $2 where id = $1`, [
      recent.batchId,
      AFTER,
    ]);

    expect(await drain((limit) => store().deleteCompletedBatches(CUTOFF, limit), 1)).toEqual([1, 0]);
    expect(await ids("batches")).toEqual([unfinished.batchId, recent.batchId].sort());
    const { rows } = await db.pool.query(`select 1 from batch_chunks where "batchId" = $1`, [old.batchId]);
    expect(rows).toEqual([]);
  });
});

describe("RetentionStore.deleteSettledWebhookEvents", () => {
  it("deletes events settled before the cutoff, with their attempts, and keeps pending and recent ones", async () => {
    const tenant = await createTenant(db);
    const settled = [
      await event(tenant, null, "delivered", BEFORE),
      await event(tenant, null, "failed", BEFORE),
      await event(tenant, null, "gone", BEFORE),
    ];
    const kept = [await event(tenant, null, "pending", BEFORE), await event(tenant, null, "delivered", AFTER)];
    await db.pool.query(
      `insert into webhook_deliveries (id, "eventId", attempt, url) values (gen_random_uuid(), $1, 1, 'https://example.com')`,
      [settled[0]],
    );

    expect(await drain((limit) => store().deleteSettledWebhookEvents(CUTOFF, limit), 2)).toEqual([2, 1]);
    expect(await ids("webhook_events")).toEqual(kept.sort());
    expect(await ids("webhook_deliveries")).toEqual([]);
  });
});
