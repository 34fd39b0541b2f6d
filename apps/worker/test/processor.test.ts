import crypto from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job as QueueEntry } from "bullmq";
import { newBatchId, type FlatTensor } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database, DispatchStore, JobStore, WebhookEventStore } from "@inferline/db";
import type { InferenceEngine, InferenceItem, ItemOutcome, SubmitOptions } from "@inferline/inference";
import { OutcomeSystem } from "@inferline/outcomes";
import { createRedis, Dispatcher, type DispatchPayload, type RedisConnection } from "@inferline/queue";
import {
  createTestDatabase,
  deletePrefix,
  newJob,
  tensor,
  testRedisUrl,
  uniquePrefix,
  type TestDatabase,
} from "@inferline/testing";
import { WorkerMetrics } from "../src/metrics.ts";
import { ExclusiveGate } from "../src/exclusive-gate.ts";
import { ChunkRetryError } from "../src/entry-run.ts";
import { createProcessor } from "../src/processor.ts";

// The processor driven with real queue entries (a BullMQ queue under this file's prefix), a
// database of this file's own and a tiny in-process model: an input's first value says what its
// run does (see MODEL).

const prefix = uniquePrefix();
let testDb: TestDatabase;
let db: Database;
let redis: RedisConnection;
let dispatcher: Dispatcher;
let jobs: JobStore;
let tenantId: string;

const OK = 1;
const RETRIABLE = 2;
const BROKEN = 3;
/** Inputs each run was given (their first value), in order. */
const runs: number[] = [];
/** Whose turn each run took in the engine's batcher (see SubmitOptions.share). */
const shares: Array<string | undefined> = [];
const MODEL = {
  async infer(_model: string, _version: string, item: InferenceItem, options?: SubmitOptions): Promise<ItemOutcome> {
    const value = (item.inputs[0] as FlatTensor).data[0] as number;
    runs.push(value);
    shares.push(options?.share?.key);
    if (value === RETRIABLE)
      return { ok: false, code: "inference_timeout", message: "the run timed out", retriable: true };
    if (value === BROKEN) return { ok: false, code: "inference_error", message: "bad input", retriable: false };
    return {
      ok: true,
      result: {
        model_name: "m",
        model_version: "1",
        outputs: [{ name: "y", datatype: "FP32", shape: [1], data: [value * 10] }],
      },
    };
  },
} as unknown as InferenceEngine;

const MAX_ATTEMPTS = 3;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = new Database(testDb.url, { poolSize: 4 });
  redis = createRedis(testRedisUrl(), "producer");
  dispatcher = new Dispatcher(redis, { prefix, attempts: MAX_ATTEMPTS, backoffMs: 60_000 });
  jobs = new JobStore(db.pool, db.prisma);
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), 'processor', 'whsec_dGVzdA==') returning id`,
  );
  tenantId = rows[0]!.id;
});
afterAll(async () => {
  await dispatcher?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
  await db?.close();
  await testDb?.drop();
});

function processor() {
  const logger = pino({ level: "silent" });
  const outcomes = new OutcomeSystem({
    db,
    jobs,
    chunks: new BatchChunkStore(db.pool),
    batches: new BatchStore(db.pool, db.prisma),
    dispatches: new DispatchStore(db.pool),
    events: new WebhookEventStore(db.pool),
    notifier: { publish: async () => {} },
    deliveries: { enqueue: async () => {} },
    entries: dispatcher,
    logger,
  });
  return createProcessor({
    store: jobs,
    chunks: new BatchChunkStore(db.pool),
    engine: MODEL,
    outcomes,
    enqueue: (groups) => dispatcher.enqueue(groups),
    metrics: new WorkerMetrics(),
    limits: { maxAttempts: MAX_ATTEMPTS, maxResultBytes: 1_000_000, backoffMs: 60_000 },
    gate: new ExclusiveGate(),
  });
}

/** Queued jobs on one queue entry, inserted and enqueued as the API does; returns the entry as a worker receives it. */
async function submit(values: number[]): Promise<{ ids: string[]; entry: QueueEntry<DispatchPayload> }> {
  const dispatchId = crypto.randomUUID();
  const rows = values.map((v) => newJob(tenantId, { model: "m", inputs: [tensor(v)], dispatchId }));
  await jobs.insertMany(rows);
  await dispatcher.enqueue([
    { dispatchId, model: "m", version: "1", priority: "normal", jobIds: rows.map((r) => r.id) },
  ]);
  return { ids: rows.map((r) => r.id), entry: (await dispatcher.queue("m", "1").getJob(dispatchId))! };
}

async function job(id: string) {
  const { rows } = await db.pool.query<{
    status: string;
    result: { outputs: Array<{ data: number[] }> } | null;
    errorCode: string | null;
    errorMessage: string | null;
    dispatchId: string;
  }>(`select status, result, "errorCode", "errorMessage", "dispatchId" from jobs where id = $1`, [id]);
  return rows[0]!;
}

describe("processor: a job entry", () => {
  it("runs every job of the entry, each as its tenant's turn in the engine, and writes their results", async () => {
    const { ids, entry } = await submit([OK, OK]);
    shares.length = 0;
    expect(await processor()(entry)).toEqual({ jobs: 2 });
    expect(shares).toEqual([tenantId, tenantId]);
    for (const id of ids)
      expect(await job(id)).toMatchObject({ status: "succeeded", result: { outputs: [{ data: [10] }] } });
  });

  it("fails only the job whose run failed for good (not retriable), with its code; the others succeed", async () => {
    const { ids, entry } = await submit([BROKEN, OK]);
    expect(await processor()(entry)).toEqual({ jobs: 2 });
    expect(await job(ids[0]!)).toMatchObject({
      status: "failed",
      errorCode: "inference_error",
      errorMessage: "bad input",
    });
    expect(await job(ids[1]!)).toMatchObject({ status: "succeeded" });
  });

  it("moves a job whose run is retriable onto a delayed entry of its own instead of failing it", async () => {
    const { ids, entry } = await submit([RETRIABLE, OK]);
    expect(await processor()(entry)).toEqual({ jobs: 1 });
    const retried = await job(ids[0]!);
    expect(retried.status).toBe("running");
    expect(retried.dispatchId).not.toBe(entry.id);
    const again = await dispatcher.queue("m", "1").getJob(retried.dispatchId);
    expect(again?.data.jobIds).toEqual([ids[0]]);
    expect(await again?.isDelayed()).toBe(true);
    expect(await job(ids[1]!)).toMatchObject({ status: "succeeded" });
  });

  it("fails a retriable run on the entry's last attempt, saying it gave up", async () => {
    const { ids, entry } = await submit([RETRIABLE]);
    entry.attemptsMade = MAX_ATTEMPTS - 1;
    expect(await processor()(entry)).toEqual({ jobs: 1 });
    expect(await job(ids[0]!)).toMatchObject({
      status: "failed",
      errorCode: "inference_timeout",
      errorMessage: "the run timed out (gave up after 1 attempts)",
    });
  });

  it("never runs a job canceled while its entry waited", async () => {
    const { ids, entry } = await submit([BROKEN, OK]);
    await db.pool.query(`update jobs set status = 'canceled', "completedAt" = now() where id = $1`, [ids[0]]);
    runs.length = 0;
    expect(await processor()(entry)).toEqual({ jobs: 1 });
    expect(runs).toEqual([OK]);
    expect(await job(ids[0]!)).toMatchObject({ status: "canceled", errorCode: null });
    expect(await job(ids[1]!)).toMatchObject({ status: "succeeded" });
  });
});

describe("processor: a batch chunk entry", () => {
  async function batchOf(
    values: number[],
  ): Promise<{ batchId: string; chunkId: string; entry: QueueEntry<DispatchPayload> }> {
    const batchId = newBatchId();
    const chunkId = crypto.randomUUID();
    const draft = await new BatchStore(db.pool, db.prisma).open({
      id: batchId,
      tenantId,
      model: "m",
      version: "1",
      priority: "low",
      webhook: null,
      requestedOutputs: [],
      metadata: {},
      idempotencyKey: null,
      queueDeadline: null,
      cancelAt: null,
      createdAt: new Date(),
    });
    await draft.add({
      id: chunkId,
      firstIndex: 0,
      inputs: values.map((v) => [tensor(v)]),
      customIds: values.map((_, i) => `c${i}`),
    });
    await draft.commit(values.length, null);
    await dispatcher.enqueue([
      { dispatchId: chunkId, model: "m", version: "1", priority: "low", jobIds: [], batchChunk: true },
    ]);
    return { batchId, chunkId, entry: (await dispatcher.queue("m", "1").getJob(chunkId))! };
  }

  const chunk = async (id: string) =>
    (
      await db.pool.query<{ statuses: string[]; results: unknown[] | null }>(
        `select statuses, results from batch_chunks where id = $1`,
        [id],
      )
    ).rows[0]!;
  const completed = async (batchId: string) =>
    (
      await db.pool.query<{ done: boolean }>(`select "completedAt" is not null as done from batches where id = $1`, [
        batchId,
      ])
    ).rows[0]!.done;

  it("runs the chunk's items, each as its tenant's turn in the engine, and writes them in one go, completing the batch", async () => {
    const { batchId, chunkId, entry } = await batchOf([OK, BROKEN, OK]);
    shares.length = 0;
    expect(await processor()(entry)).toEqual({ jobs: 3 });
    expect(shares).toEqual([tenantId, tenantId, tenantId]);
    expect((await chunk(chunkId)).statuses).toEqual(["succeeded", "failed", "succeeded"]);
    expect(await completed(batchId)).toBe(true);
  });

  it("writes what finished and throws ChunkRetryError for items whose run is retriable, so BullMQ runs the entry again", async () => {
    const { batchId, chunkId, entry } = await batchOf([OK, RETRIABLE]);
    await expect(processor()(entry)).rejects.toBeInstanceOf(ChunkRetryError);
    expect((await chunk(chunkId)).statuses).toEqual(["succeeded", "queued"]);
    expect(await completed(batchId)).toBe(false);
  });
});
