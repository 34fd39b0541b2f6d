import crypto from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { newBatchId } from "@inferline/contracts";
import {
  BatchChunkStore,
  BatchStore,
  Database,
  DispatchStore,
  JobStore,
  WebhookEventStore,
  type NewBatch,
  type NewJob,
  type RecordedEvent,
} from "@inferline/db";
import type { DispatchGroup } from "@inferline/queue";
import { createTestDatabase, newJob as testingNewJob, tensor, type TestDatabase } from "@inferline/testing";
import type { EndedWork, OutcomeResources } from "../src/resources.ts";

/** What the outcome path did outside PostgreSQL: messages, deliveries, queue entries, hook calls, warnings. */
export interface Recorded {
  published: string[];
  delivered: RecordedEvent[];
  enqueued: DispatchGroup[];
  removed: Array<{ id: string; model: string; version: string }>;
  ended: EndedWork[];
  warnings: string[];
}

export const recorded = (): Recorded => ({
  published: [],
  delivered: [],
  enqueued: [],
  removed: [],
  ended: [],
  warnings: [],
});

/** The outcome path's resources over a database of this file's own (real stores), with Redis's side recorded in `seen`. */
export function useOutcomeResources(): { db: () => Database; resources: (seen: Recorded) => OutcomeResources } {
  let testDb: TestDatabase | undefined;
  let db: Database | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = new Database(testDb.url, { poolSize: 4 });
  });
  afterAll(async () => {
    await db?.close();
    await testDb?.drop();
  });
  const database = () => db!;
  const resources = (seen: Recorded): OutcomeResources => ({
    db: database(),
    jobs: new JobStore(database().pool, database().prisma),
    chunks: new BatchChunkStore(database().pool),
    batches: new BatchStore(database().pool, database().prisma),
    dispatches: new DispatchStore(database().pool),
    events: new WebhookEventStore(database().pool),
    notifier: { publish: async (channels) => void seen.published.push(...channels) },
    deliveries: { enqueue: async (events) => void seen.delivered.push(...(events as RecordedEvent[])) },
    entries: {
      enqueue: async (groups) => void seen.enqueued.push(...groups),
      remove: async (entries) => void seen.removed.push(...entries),
    },
    logger: { warn: (_obj, msg) => void seen.warnings.push(msg ?? "") },
  });
  return { db: database, resources };
}

export async function createTenant(db: Database): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_dGVzdA==') returning id`,
    [`tenant-${crypto.randomUUID()}`],
  );
  return rows[0]!.id;
}

export { tensor };

export const HOOK = { url: "https://example.com/hook" };

/** A queued job as the API inserts it (see @inferline/testing's newJob), always on a queue entry. */
export const newJob = (tenantId: string, overrides: Partial<NewJob> & { dispatchId?: string } = {}) =>
  testingNewJob(tenantId, overrides) as NewJob & { dispatchId: string };

/** Inserts queued jobs (through JobStore.insertMany, as the API does). */
export async function insertJobs<T extends NewJob>(db: Database, jobs: T[]): Promise<T[]> {
  await new JobStore(db.pool, db.prisma).insertMany(jobs);
  return jobs;
}

export async function jobRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{ status: string; result: unknown; errorCode: string | null }>(
    `select status, result, "errorCode" from jobs where id = $1`,
    [id],
  );
  return rows[0];
}

export async function dispatchExists(db: Database, id: string): Promise<boolean> {
  return (await db.pool.query(`select 1 from dispatches where id = $1`, [id])).rowCount === 1;
}

/** A committed batch of one chunk per size (through BatchStore.open, as the API writes one). */
export async function createBatch(
  db: Database,
  tenantId: string,
  sizes: number[],
  spec: Partial<NewBatch> = {},
): Promise<{ batchId: string; chunkIds: string[] }> {
  const batch: NewBatch = {
    id: newBatchId(),
    tenantId,
    model: "iris",
    version: "1",
    priority: "low",
    webhook: null,
    requestedOutputs: [],
    metadata: {},
    idempotencyKey: null,
    queueDeadline: null,
    cancelAt: null,
    createdAt: new Date(),
    ...spec,
  };
  const draft = await new BatchStore(db.pool, db.prisma).open(batch);
  const chunkIds: string[] = [];
  let firstIndex = 0;
  for (const size of sizes) {
    const id = crypto.randomUUID();
    const indexes = Array.from({ length: size }, (_, i) => firstIndex + i);
    await draft.add({
      id,
      firstIndex,
      inputs: indexes.map((i) => [tensor(i)]),
      customIds: indexes.map((i) => `c${i}`),
    });
    chunkIds.push(id);
    firstIndex += size;
  }
  await draft.commit(firstIndex, null);
  return { batchId: batch.id, chunkIds };
}

export async function batchRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{ remaining: number; completed: boolean; canceled: boolean }>(
    `select remaining, "completedAt" is not null as completed, "canceledAt" is not null as canceled from batches where id = $1`,
    [id],
  );
  return rows[0];
}

export async function chunkStatuses(db: Database, id: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ statuses: string[] }>(`select statuses from batch_chunks where id = $1`, [id]);
  return rows[0]!.statuses;
}

/** Webhook events recorded for a job or batch, by type. */
export async function eventTypes(db: Database, subjectId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ type: string }>(
    `select type from webhook_events where "jobId"::text = $1 or "batchId"::text = $1 order by type`,
    [subjectId],
  );
  return rows.map((r) => r.type);
}
