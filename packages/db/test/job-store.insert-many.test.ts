import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { isRowFault, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.insertMany", () => {
  it("inserts the jobs queued, with one dispatch row per queue entry counting its jobs", async () => {
    const tenant = await createTenant(database());
    const entry = crypto.randomUUID();
    const jobs = [
      newJob(tenant, { dispatchId: entry, priority: "high" }),
      newJob(tenant, { dispatchId: entry, priority: "high" }),
      newJob(tenant),
    ];
    await store().insertMany(jobs);

    for (const job of jobs)
      expect(await jobRow(database(), job.id)).toMatchObject({
        status: "queued",
        attempts: 0,
        dispatchId: job.dispatchId,
        startedAt: null,
        completedAt: null,
      });
    expect(await dispatchRow(database(), entry)).toEqual({
      model: "iris",
      version: "1",
      priority: "high",
      jobs: 2,
      jobIds: [jobs[0]!.id, jobs[1]!.id],
      batchChunk: false,
    });
    expect(await dispatchRow(database(), jobs[2]!.dispatchId!)).toMatchObject({ jobs: 1, jobIds: [jobs[2]!.id] });
  });

  it("stores each column as given: inputs, outputs, metadata, webhook, idempotency key, creation time", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant, {
      requestedOutputs: ["probabilities"],
      metadata: { run: "7" },
      webhook: { url: "https://example.com/hook", events: ["job.failed"] },
      idempotencyKey: "k1",
      requestHash: "h1",
      createdAt: new Date("2026-01-02T03:04:05.678Z"),
    });
    await store().insertMany([job]);
    const row = await store().get(tenant, job.id);
    expect(row).toMatchObject({
      inputs: job.inputs,
      requestedOutputs: ["probabilities"],
      metadata: { run: "7" },
      webhook: { url: "https://example.com/hook", events: ["job.failed"] },
      idempotencyKey: "k1",
      requestHash: "h1",
      createdAt: job.createdAt,
    });
  });

  it("writes no dispatch row for a job without a queue entry", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant, { dispatchId: null });
    await store().insertMany([job]);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "queued", dispatchId: null });
    const { rows } = await database().pool.query(`select 1 from dispatches where $1 = any("jobIds")`, [job.id]);
    expect(rows).toEqual([]);
  });

  it("adds to an entry's dispatch row across statements (more jobs than one statement carries, or a second call)", async () => {
    const tenant = await createTenant(database());
    const entry = crypto.randomUUID();
    const jobs = Array.from({ length: 5003 }, () => newJob(tenant, { dispatchId: entry }));
    await store().insertMany(jobs);
    await store().insertMany([newJob(tenant, { dispatchId: entry })]);
    const row = await dispatchRow(database(), entry);
    expect(row?.jobs).toBe(5004);
    expect(row?.jobIds.slice(0, 5003)).toEqual(jobs.map((j) => j.id));
    const { rows } = await database().pool.query<{ n: number }>(
      `select count(*)::int as n from jobs where "dispatchId" = $1`,
      [entry],
    );
    expect(rows[0]!.n).toBe(5004);
  });

  it("writes nothing when the caller's transaction rolls back", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await expect(
      database().transaction(async (client) => {
        await store().insertMany([job], client);
        throw new Error("abandon");
      }),
    ).rejects.toThrow("abandon");
    expect(await jobRow(database(), job.id)).toBeUndefined();
    expect(await dispatchRow(database(), job.dispatchId!)).toBeUndefined();
  });

  it("refuses a tenant's idempotency key used twice with a row fault (23505), and lets another tenant use it", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    await store().insertMany([newJob(a, { idempotencyKey: "same" })]);
    const err = await store()
      .insertMany([newJob(a, { idempotencyKey: "same" })])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "23505" });
    expect(isRowFault(err)).toBe(true);
    await expect(store().insertMany([newJob(b, { idempotencyKey: "same" })])).resolves.toBeUndefined();
  });

  it("fails the whole statement with a row fault (22P05) on a string PostgreSQL cannot store, inserting none of its jobs", async () => {
    const tenant = await createTenant(database());
    const good = newJob(tenant);
    const bad = newJob(tenant, { metadata: { note: "nul\u0000byte" } });
    const err = await store()
      .insertMany([good, bad])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "22P05" });
    expect(isRowFault(err)).toBe(true);
    expect(await jobRow(database(), good.id)).toBeUndefined();
    expect(await dispatchRow(database(), good.dispatchId!)).toBeUndefined();
  });
});
