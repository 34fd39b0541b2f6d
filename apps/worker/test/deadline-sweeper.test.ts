import crypto from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BatchChunkStore,
  BatchStore,
  Database,
  DispatchStore,
  JobStore,
  WebhookEventStore,
  type RecordedEvent,
} from "@inferline/db";
import { OutcomeSystem } from "@inferline/outcomes";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";
import { DeadlineSweeper, type DeadlinePass } from "@inferline/worker";

let testDb: TestDatabase;
let db: Database;
const logger = pino({ level: "silent" });
const published: string[] = [];
const enqueued: RecordedEvent[] = [];
let outcomes: OutcomeSystem;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = new Database(testDb.url, { poolSize: 6 });
  outcomes = new OutcomeSystem({
    db,
    jobs: new JobStore(db.pool, db.prisma),
    chunks: new BatchChunkStore(db.pool),
    batches: new BatchStore(db.pool, db.prisma),
    dispatches: new DispatchStore(db.pool),
    events: new WebhookEventStore(db.pool),
    notifier: { publish: async (channels) => void published.push(...channels) },
    // The outcome path enqueues the events it recorded, whole.
    deliveries: { enqueue: async (events) => void enqueued.push(...(events as RecordedEvent[])) },
    logger,
  });
});
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

const TENANT = "00000000-0000-4000-8000-0000000000d1";
const WEBHOOK = JSON.stringify({ url: "https://example.com/hook" });

/** Queued jobs with a webhook and the given deadline columns (SQL expressions); returns their ids. */
async function jobs(count: number, deadlines: { queueDeadline?: string; cancelAt?: string }): Promise<string[]> {
  const ids = Array.from({ length: count }, () => crypto.randomUUID());
  await db.pool.query(
    `insert into jobs (id, "tenantId", model, version, inputs, webhook, "queueDeadline", "cancelAt")
     select id, $2, 'iris', '1', '[]', $3::jsonb, ${deadlines.queueDeadline ?? "null"}, ${deadlines.cancelAt ?? "null"} from unnest($1::uuid[]) as id`,
    [ids, TENANT, WEBHOOK],
  );
  return ids;
}

/** A batch of `chunks` unstarted chunks of `size` items, with a webhook and the given deadline columns; returns its id. */
async function batch(
  chunks: number,
  size: number,
  deadlines: { queueDeadline?: string; cancelAt?: string },
): Promise<string> {
  const id = crypto.randomUUID();
  await db.pool.query(
    `insert into batches (id, "tenantId", model, version, total, remaining, webhook, "queueDeadline", "cancelAt")
     values ($1, $2, 'iris', '1', $3, $3, $4::jsonb, ${deadlines.queueDeadline ?? "null"}, ${deadlines.cancelAt ?? "null"})`,
    [id, TENANT, chunks * size, WEBHOOK],
  );
  for (let c = 0; c < chunks; c++) {
    await db.pool.query(
      `insert into batch_chunks (id, "batchId", "firstIndex", size, inputs, "customIds", statuses) values ($1, $2, $3, $4, '[]', array_fill(null::text, array[$4::int]), array_fill('queued'::text, array[$4::int]))`,
      [crypto.randomUUID(), id, c * size, size],
    );
  }
  return id;
}

const statuses = async (ids: string[]) =>
  (await db.pool.query<{ status: string }>(`select status from jobs where id = any($1::uuid[])`, [ids])).rows.map(
    (r) => r.status,
  );

function sum(passes: DeadlinePass[]): DeadlinePass {
  return passes.reduce((a, p) => ({
    expiredJobs: a.expiredJobs + p.expiredJobs,
    canceledJobs: a.canceledJobs + p.canceledJobs,
    expiredItems: a.expiredItems + p.expiredItems,
    canceledBatches: a.canceledBatches + p.canceledBatches,
  }));
}

describe("DeadlineSweeper", () => {
  it("ends everything past its deadlines, page after page, exactly once with two sweeps running at once", async () => {
    await db.pool.query(`insert into tenants (id, name, "webhookSecret") values ($1, 'swept', 'whsec_x')`, [TENANT]);
    const late = await jobs(23, { queueDeadline: "now() - interval '1 second'" });
    const overdue = await jobs(7, { cancelAt: "now() - interval '1 second'" });
    const waiting = await jobs(3, {
      queueDeadline: "now() + interval '1 hour'",
      cancelAt: "now() + interval '1 hour'",
    });
    const lateBatch = await batch(5, 3, { queueDeadline: "now() - interval '1 second'" });
    const canceledBatch = await batch(2, 2, { cancelAt: "now() - interval '1 second'" });

    const sweepers = [0, 1].map(() => new DeadlineSweeper(outcomes, { intervalMs: 0, logger, pageSize: 4 }));
    const total = sum(await Promise.all(sweepers.map((s) => s.runOnce())));

    expect(total).toEqual({ expiredJobs: 23, canceledJobs: 7, expiredItems: 15, canceledBatches: 1 });
    expect(new Set(await statuses(late))).toEqual(new Set(["expired"]));
    expect(new Set(await statuses(overdue))).toEqual(new Set(["canceled"]));
    expect(new Set(await statuses(waiting))).toEqual(new Set(["queued"]));
    // One event per job and per batch, enqueued by whichever sweep ended it; waiters woken.
    const types = enqueued.map((e) => e.type).sort();
    expect(types.filter((t) => t === "job.expired")).toHaveLength(23);
    expect(types.filter((t) => t === "job.canceled")).toHaveLength(7);
    expect(types.filter((t) => t === "batch.completed")).toHaveLength(2);
    expect(published).toEqual(expect.arrayContaining([...late, ...overdue, lateBatch, canceledBatch]));

    const { rows } = await db.pool.query(
      `select id, "completedAt" is not null as completed, "canceledAt" is not null as canceled, remaining from batches order by id`,
    );
    expect(rows).toEqual(
      [
        { id: lateBatch, completed: true, canceled: false, remaining: 0 },
        { id: canceledBatch, completed: true, canceled: true, remaining: 0 },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    // Nothing is left for a next pass.
    expect(await sweepers[0]!.runOnce()).toEqual({
      expiredJobs: 0,
      canceledJobs: 0,
      expiredItems: 0,
      canceledBatches: 0,
    });
  });
});
