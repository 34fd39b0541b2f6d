import crypto from "node:crypto";
import { newBatchId } from "@inferline/contracts";
import { newJob, tensor } from "@inferline/testing";
import { BatchStore, type Database, type NewBatch, type NewWebhookEvent } from "@inferline/db";

/**
 * Rows a store test starts from. Every helper makes fresh ids (and a fresh tenant name), so the
 * tests of one file share its database without seeing each other's rows.
 */

/** A tenant with a unique name; returns its id. */
export async function createTenant(db: Database, name = `tenant-${crypto.randomUUID()}`): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_dGVzdA==') returning id`,
    [name],
  );
  return rows[0]!.id;
}

export { newJob, tensor };

/** A job's row as the statements left it. */
export async function jobRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{
    status: string;
    attempts: number;
    result: unknown;
    errorCode: string | null;
    errorMessage: string | null;
    startedAt: Date | null;
    completedAt: Date | null;
    dispatchId: string | null;
    idempotencyKey: string | null;
  }>(
    `select status, attempts, result, "errorCode", "errorMessage", "startedAt", "completedAt", "dispatchId", "idempotencyKey" from jobs where id = $1`,
    [id],
  );
  return rows[0];
}

/** The `dispatches` row of a queue entry, or undefined when there is none. */
export async function dispatchRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{
    model: string;
    version: string;
    priority: string;
    jobs: number;
    jobIds: string[];
    batchChunk: boolean;
  }>(`select model, version, priority, jobs, "jobIds", "batchChunk" from dispatches where id = $1`, [id]);
  return rows[0];
}

export interface CreatedBatch {
  batchId: string;
  tenantId: string;
  /** Chunk ids in item order (each is also its queue entry's id). */
  chunkIds: string[];
  total: number;
}

export interface BatchSpec {
  /** Items per chunk, in order. Default one chunk of 3. */
  sizes?: number[];
  model?: string;
  idempotencyKey?: string | null;
  webhook?: NewBatch["webhook"];
  metadata?: Record<string, string>;
  requestedOutputs?: string[];
  createdAt?: Date;
}

/** A committed batch (through BatchStore.open, as the API writes one); item i's customId is `c<i>` and its input tensor(i). */
export async function createBatch(db: Database, tenantId: string, spec: BatchSpec = {}): Promise<CreatedBatch> {
  const sizes = spec.sizes ?? [3];
  const draft = await new BatchStore(db.pool, db.prisma).open(newBatch(tenantId, spec));
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
  return { batchId: draft.batch.id, tenantId, chunkIds, total: firstIndex };
}

export function newBatch(tenantId: string, spec: BatchSpec = {}): NewBatch {
  return {
    id: newBatchId(),
    tenantId,
    model: spec.model ?? "iris",
    version: "1",
    priority: "low",
    webhook: spec.webhook ?? null,
    requestedOutputs: spec.requestedOutputs ?? [],
    metadata: spec.metadata ?? {},
    idempotencyKey: spec.idempotencyKey ?? null,
    queueDeadline: null,
    cancelAt: null,
    createdAt: spec.createdAt ?? new Date(),
  };
}

/** A batch chunk's row as the statements left it. */
export async function chunkRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{
    statuses: string[];
    results: unknown[] | null;
    errors: unknown[] | null;
    succeeded: number;
    failed: number;
    canceled: number;
    attempts: number;
    startedAt: Date | null;
    completedAt: Date | null;
  }>(
    `select statuses, results, errors, succeeded, failed, canceled, attempts, "startedAt", "completedAt" from batch_chunks where id = $1`,
    [id],
  );
  return rows[0];
}

/** A batch's row: what settling its count left. */
export async function batchRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{
    total: number;
    remaining: number;
    completedAt: Date | null;
    canceledAt: Date | null;
  }>(`select total, remaining, "completedAt", "canceledAt" from batches where id = $1`, [id]);
  return rows[0];
}

/** A webhook event of a job (or batch) to record; its id is unique. */
export function newWebhookEvent(
  tenantId: string,
  subject: { jobId?: string; batchId?: string },
  overrides: Partial<NewWebhookEvent> = {},
): NewWebhookEvent {
  return {
    id: `msg_${crypto.randomUUID()}`,
    tenantId,
    jobId: subject.jobId ?? null,
    batchId: subject.batchId ?? null,
    type: "job.succeeded",
    url: "https://example.com/hook",
    payload: JSON.stringify({
      type: "job.succeeded",
      timestamp: "2026-01-01T00:00:00.000Z",
      data: { id: subject.jobId ?? subject.batchId },
    }),
    ...overrides,
  };
}

/** A webhook event's row as the statements left it. */
export async function webhookEventRow(db: Database, id: string) {
  const { rows } = await db.pool.query<{
    status: string;
    attempts: number;
    redeliveries: number;
    nextAttemptAt: Date | null;
    deliveredAt: Date | null;
    createdAt: Date;
  }>(
    `select status, attempts, redeliveries, "nextAttemptAt", "deliveredAt", "createdAt" from webhook_events where id = $1`,
    [id],
  );
  return rows[0];
}

/**
 * Sets the events' creation times one second apart, in the order given, so that "oldest" and
 * "latest" do not hang on two inserts falling in the same millisecond.
 */
export async function orderEvents(db: Database, ids: string[]): Promise<void> {
  await db.pool.query(
    `update webhook_events e set "createdAt" = now() - make_interval(secs => (array_length($1::text[], 1) - x.n)::double precision) from unnest($1::text[]) with ordinality as x(id, n) where e.id = x.id`,
    [ids],
  );
}
