import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { InferlineError } from "@inferline/contracts";
import { BatchStore } from "@inferline/db";
import { sleepUntil } from "@inferline/testing";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, chunkRow, createTenant, dispatchRow, newBatch, tensor } from "./support/rows.ts";

const database = useTestDatabase();
const store = (options = {}) => new BatchStore(database().pool, database().prisma, options);

/** A chunk of `size` items starting at `firstIndex`. */
const chunkOf = (firstIndex: number, size: number) => ({
  id: crypto.randomUUID(),
  firstIndex,
  inputs: Array.from({ length: size }, (_, i) => [tensor(firstIndex + i)]),
  customIds: Array.from({ length: size }, (_, i) => (i % 2 ? null : `c${firstIndex + i}`)),
});

async function batchExists(id: string): Promise<boolean> {
  return (await database().pool.query(`select 1 from batches where id = $1`, [id])).rowCount === 1;
}

describe("BatchStore.open (BatchDraft)", () => {
  it("commits the batch with its totals, its chunks and one queue entry per chunk", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant, {
      webhook: { url: "https://example.com/hook" },
      metadata: { run: "1" },
      requestedOutputs: ["y"],
    });
    const draft = await store().open(spec);
    const chunks = [chunkOf(0, 3), chunkOf(3, 2)];
    for (const c of chunks) await draft.add(c);
    await draft.commit(5, "hash");

    expect(await batchRow(database(), spec.id)).toEqual({
      total: 5,
      remaining: 5,
      completedAt: null,
      canceledAt: null,
    });
    expect(await store().get(tenant, spec.id)).toMatchObject({
      model: "iris",
      requestHash: "hash",
      webhook: { url: "https://example.com/hook" },
      metadata: { run: "1" },
      requestedOutputs: ["y"],
    });
    for (const c of chunks) {
      expect(await chunkRow(database(), c.id)).toMatchObject({
        statuses: c.inputs.map(() => "queued"),
        results: null,
        errors: null,
        succeeded: 0,
        attempts: 0,
        startedAt: null,
      });
      expect(await dispatchRow(database(), c.id)).toEqual({
        model: "iris",
        version: "1",
        priority: "low",
        jobs: c.inputs.length,
        jobIds: [],
        batchChunk: true,
      });
    }
    const { rows } = await database().pool.query<{ inputs: unknown; customIds: Array<string | null> }>(
      `select inputs, "customIds" from batch_chunks where id = $1`,
      [chunks[1]!.id],
    );
    expect(rows[0]).toEqual({ inputs: chunks[1]!.inputs, customIds: chunks[1]!.customIds });
  });

  it("writes many chunks, several statements of them, all in item order", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant);
    const draft = await store().open(spec);
    const chunks = Array.from({ length: 40 }, (_, i) => chunkOf(i * 2, 2));
    for (const c of chunks) await draft.add(c);
    await draft.commit(80, null);
    const { rows } = await database().pool.query<{ id: string; firstIndex: number }>(
      `select id, "firstIndex" from batch_chunks where "batchId" = $1 order by "firstIndex"`,
      [spec.id],
    );
    expect(rows.map((r) => r.id)).toEqual(chunks.map((c) => c.id));
    const { rows: entries } = await database().pool.query<{ n: number }>(
      `select count(*)::int as n from dispatches where id = any($1::uuid[])`,
      [chunks.map((c) => c.id)],
    );
    expect(entries[0]!.n).toBe(40);
  });

  it("shows nothing of the batch to anyone else before commit", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant);
    const draft = await store().open(spec);
    const chunk = chunkOf(0, 2);
    await draft.add(chunk);
    expect(await batchExists(spec.id)).toBe(false);
    expect(await chunkRow(database(), chunk.id)).toBeUndefined();
    await draft.commit(2, null);
    expect(await batchExists(spec.id)).toBe(true);
  });

  it("leaves nothing behind on rollback; rollback may be called again, and after commit", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant);
    const draft = await store().open(spec);
    const chunks = Array.from({ length: 20 }, (_, i) => chunkOf(i, 1)); // past one statement's worth: one insert in flight
    for (const c of chunks) await draft.add(c);
    await draft.rollback();
    await draft.rollback();
    expect(await batchExists(spec.id)).toBe(false);
    expect(await dispatchRow(database(), chunks[0]!.id)).toBeUndefined();
    await expect(draft.add(chunkOf(20, 1))).rejects.toThrow(/already committed or rolled back/);

    const committed = await store().open(newBatch(tenant));
    await committed.commit(0, null);
    await committed.rollback();
    expect(await batchExists(committed.batch.id)).toBe(true);
  });

  it("rolls back everything when a chunk insert fails, reporting that failure at commit", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant);
    const draft = await store().open(spec);
    const first = chunkOf(0, 1);
    await draft.add(first);
    await draft.add({ ...chunkOf(1, 1), firstIndex: 0 }); // the same firstIndex twice: 23505
    await expect(draft.commit(2, null)).rejects.toMatchObject({ code: "23505" });
    expect(await batchExists(spec.id)).toBe(false);
    expect(await dispatchRow(database(), first.id)).toBeUndefined();
  });

  it("makes a second create with the tenant's Idempotency-Key wait for the first, then fail on its unique index", async () => {
    const tenant = await createTenant(database());
    const first = await store().open(newBatch(tenant, { idempotencyKey: "nightly" }));
    const second = store().open(newBatch(tenant, { idempotencyKey: "nightly" }));
    second.catch(() => {}); // awaited below
    await sleepUntil(
      async () =>
        (
          await database().pool.query(
            `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          )
        ).rowCount === 1,
      {
        message: "the second create never waited",
      },
    );
    await first.commit(0, null);
    await expect(second).rejects.toMatchObject({ code: "23505" });
    expect((await store().findByIdempotencyKey(tenant, "nightly"))?.id).toBe(first.batch.id);
  });

  it("lets the waiting create through when the first rolls back", async () => {
    const tenant = await createTenant(database());
    const first = await store().open(newBatch(tenant, { idempotencyKey: "retry" }));
    const second = store().open(newBatch(tenant, { idempotencyKey: "retry" }));
    await sleepUntil(
      async () =>
        (
          await database().pool.query(
            `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          )
        ).rowCount === 1,
      {
        message: "the second create never waited",
      },
    );
    await first.rollback();
    const draft = await second;
    await draft.commit(0, null);
    expect((await store().findByIdempotencyKey(tenant, "retry"))?.id).toBe(draft.batch.id);
  });

  it("fails an upload whose body stalls past the idle timeout with upload_stalled (408), leaving nothing", async () => {
    const tenant = await createTenant(database());
    const spec = newBatch(tenant);
    const draft = await store({ draftIdleTimeoutMs: 150 }).open(spec);
    // PostgreSQL ends the session the upload left idle in its transaction; wait until it is gone.
    const idle = async () =>
      (
        await database().pool.query(
          `select 1 from pg_stat_activity where datname = current_database() and state = 'idle in transaction'`,
        )
      ).rowCount;
    expect(await idle()).toBe(1);
    await sleepUntil(async () => (await idle()) === 0, { message: "the idle upload's session was never ended" });
    const err = await draft
      .add(chunkOf(0, 1))
      .then(() => draft.commit(1, null))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferlineError);
    expect(err).toMatchObject({ code: "upload_stalled", status: 408 });
    await draft.rollback();
    expect(await batchExists(spec.id)).toBe(false);
  });
});
