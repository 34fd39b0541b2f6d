import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, RetentionStore } from "@inferline/db";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";
import { RetentionSweeper } from "@inferline/worker";

let testDb: TestDatabase;
let db: Database;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = new Database(testDb.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

const TENANT = "00000000-0000-4000-8000-000000000001";
const OLD = "now() - interval '40 days'";
const RECENT = "now() - interval '2 days'";

async function job(id: string, status: string, at: string): Promise<void> {
  const completed = status === "queued" ? "null" : at;
  await db.pool.query(
    `insert into jobs (id, "tenantId", model, version, inputs, status, "createdAt", "completedAt") values ($1, $2, 'iris', '1', '[]', $3::"JobStatus", ${at}, ${completed})`,
    [id, TENANT, status],
  );
}

async function ids(table: string): Promise<string[]> {
  return (await db.pool.query<{ id: string }>(`select id::text from ${table} order by id`)).rows.map((r) => r.id);
}

describe("retention", () => {
  it("deletes what finished before the cutoff, page by page, and keeps the rest", async () => {
    await db.pool.query(`insert into tenants (id, name, "webhookSecret") values ($1, 'retained', 'whsec_x')`, [TENANT]);
    const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
    for (const n of [11, 12, 13]) await job(id(n), "succeeded", OLD); // three pages of two with pageSize 2
    await job(id(14), "queued", OLD); // never finished: kept
    await job(id(15), "failed", RECENT); // inside the window: kept
    await job(id(16), "canceled", OLD); // its webhook is still being retried: kept
    await db.pool.query(
      `insert into webhook_events (id, "tenantId", "jobId", type, url, payload, status, "createdAt") values
         ('msg_pending', $1, $2, 'job.canceled', 'https://example.com', '{}', 'pending', ${OLD}),
         ('msg_done', $1, $3, 'job.succeeded', 'https://example.com', '{}', 'delivered', ${OLD}),
         ('msg_recent', $1, $4, 'job.failed', 'https://example.com', '{}', 'failed', ${RECENT})`,
      [TENANT, id(16), id(11), id(15)],
    );
    await db.pool.query(
      `insert into batches (id, "tenantId", model, version, total, remaining, "createdAt", "completedAt") values
         ($1, $3, 'iris', '1', 1, 0, ${OLD}, ${OLD}), ($2, $3, 'iris', '1', 1, 1, ${OLD}, null)`,
      [id(21), id(22), TENANT],
    );
    await db.pool.query(
      `insert into batch_chunks (id, "batchId", "firstIndex", size, inputs, "customIds", statuses) values ($1, $2, 0, 1, '[[]]', '{null}', '{succeeded}')`,
      [id(31), id(21)],
    );

    const logger = pino({ level: "silent" });
    // RETENTION_DAYS=0 keeps everything, even when a pass is asked for.
    expect(
      await new RetentionSweeper(new RetentionStore(db.pool), { days: 0, intervalMs: 0, logger }).runOnce(),
    ).toEqual({ jobs: 0, batches: 0, webhookEvents: 0 });
    const sweeper = new RetentionSweeper(new RetentionStore(db.pool), { days: 30, intervalMs: 0, logger, pageSize: 2 });
    expect(await sweeper.runOnce()).toEqual({ jobs: 3, batches: 1, webhookEvents: 1 });
    expect(await ids("jobs")).toEqual([id(14), id(15), id(16)]);
    expect(await ids("batches")).toEqual([id(22)]);
    expect(await ids("batch_chunks")).toEqual([]); // went with its batch
    expect(await ids("webhook_events")).toEqual(["msg_pending", "msg_recent"]);
    expect(await sweeper.runOnce()).toEqual({ jobs: 0, batches: 0, webhookEvents: 0 });
  });
});
