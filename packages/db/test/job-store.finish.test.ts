import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { ANNOUNCED_MAX_JOBS, ANNOUNCED_RESULT_BYTES, isRowFault, JobStore, toJobView } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);
const RESULT = { model_name: "iris", model_version: "1", outputs: [] };

describe("JobStore.finish", () => {
  it("writes successes and failures of queued and running jobs, and returns the jobs it finished", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook" };
    const [ran, failed, queued] = [newJob(tenant, { webhook }), newJob(tenant), newJob(tenant)];
    await store().insertMany([ran, failed, queued]);
    await store().claim([ran.id, failed.id]);

    const finished = await store().finish([
      { id: ran.id, status: "succeeded", resultJson: JSON.stringify(RESULT) },
      { id: failed.id, status: "failed", errorCode: "inference_error", errorMessage: "bad input" },
      { id: queued.id, status: "succeeded", resultJson: "{}" },
    ]);

    expect(finished.map(({ viewJson: _, ...f }) => f).sort((x, y) => x.id.localeCompare(y.id))).toEqual(
      [
        { id: ran.id, tenantId: tenant, status: "succeeded", model: "iris", webhook, cacheKey: null },
        { id: failed.id, tenantId: tenant, status: "failed", model: "iris", webhook: null, cacheKey: null },
        { id: queued.id, tenantId: tenant, status: "succeeded", model: "iris", webhook: null, cacheKey: null },
      ].sort((x, y) => x.id.localeCompare(y.id)),
    );
    expect(await jobRow(database(), ran.id)).toMatchObject({ status: "succeeded", result: RESULT, errorCode: null });
    expect(await jobRow(database(), failed.id)).toMatchObject({
      status: "failed",
      result: null,
      errorCode: "inference_error",
      errorMessage: "bad input",
    });
    // A job finished without a claim (a cache hit, say) still gets a start time.
    const row = await jobRow(database(), queued.id);
    expect(row?.startedAt).toBeInstanceOf(Date);
    expect(row?.completedAt).toBeInstanceOf(Date);
  });

  it("gives each job it finished its view as GET shows it (the finished message's), but none for a result too large to announce", async () => {
    const tenant = await createTenant(database());
    const [ran, failed, large] = [
      newJob(tenant, { metadata: { order: "17", customer: "c-9" }, priority: "high" }),
      newJob(tenant),
      newJob(tenant),
    ];
    await store().insertMany([ran, failed, large]);
    await store().claim([ran.id, failed.id, large.id]);
    const largeResult = {
      outputs: [{ name: "y", datatype: "BYTES", shape: [1], data: ["x".repeat(ANNOUNCED_RESULT_BYTES)] }],
    };
    const finished = await store().finish([
      { id: ran.id, status: "succeeded", resultJson: JSON.stringify(RESULT) },
      { id: failed.id, status: "failed", errorCode: "inference_error", errorMessage: "bad input" },
      { id: large.id, status: "succeeded", resultJson: JSON.stringify(largeResult) },
    ]);
    const byId = new Map(finished.map((f) => [f.id, f]));
    for (const job of [ran, failed]) {
      const viewJson = byId.get(job.id)?.viewJson;
      expect(viewJson).toBeDefined();
      // Same fields, same values, same order as a read of the row.
      expect(viewJson).toBe(JSON.stringify(toJobView((await store().get(tenant, job.id))!)));
    }
    expect(byId.get(large.id)?.viewJson).toBeUndefined();
  });

  it("builds no views for a write of more than ANNOUNCED_MAX_JOBS jobs (they would not fit in a message)", async () => {
    const tenant = await createTenant(database());
    const jobs = Array.from({ length: ANNOUNCED_MAX_JOBS + 1 }, () => newJob(tenant));
    await store().insertMany(jobs);
    const finished = await store().finish(
      jobs.map((j) => ({ id: j.id, status: "succeeded", resultJson: JSON.stringify(RESULT) })),
    );
    expect(finished).toHaveLength(jobs.length);
    expect(finished.filter((f) => f.viewJson !== undefined)).toEqual([]);
  });

  it("writes a job's outcome once: a retried or duplicate attempt returns nothing and overwrites nothing", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().finish([{ id: job.id, status: "succeeded", resultJson: '{"first":true}' }]);
    const first = await jobRow(database(), job.id);

    expect(
      await store().finish([{ id: job.id, status: "failed", errorCode: "retries_exhausted", errorMessage: "late" }]),
    ).toEqual([]);
    expect(await store().finish([{ id: job.id, status: "succeeded", resultJson: '{"second":true}' }])).toEqual([]);
    expect(await jobRow(database(), job.id)).toEqual(first);
  });

  it("keeps a cancel: the outcome of a canceled job is dropped", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().claim([job.id]);
    await store().cancel(tenant, job.id);
    expect(await store().finish([{ id: job.id, status: "succeeded", resultJson: "{}" }])).toEqual([]);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "canceled", result: null });
  });

  it("finishes a job exactly once when several writers race", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        store().finish([
          i % 2
            ? { id: job.id, status: "succeeded", resultJson: `{"writer":${i}}` }
            : { id: job.id, status: "failed", errorCode: "e", errorMessage: String(i) },
        ]),
      ),
    );
    expect(results.flat()).toHaveLength(1);
    expect((await jobRow(database(), job.id))?.status).toBe(results.flat()[0]!.status);
  });

  it("deletes the processed queue entries' dispatch rows in the same statement, even with no outcome to write", async () => {
    const tenant = await createTenant(database());
    const [a, b, kept] = [newJob(tenant), newJob(tenant), newJob(tenant)];
    await store().insertMany([a, b, kept]);
    await store().finish([{ id: a.id, status: "succeeded", resultJson: "{}" }], [a.dispatchId!]);
    expect(await dispatchRow(database(), a.dispatchId!)).toBeUndefined();
    expect(await dispatchRow(database(), kept.dispatchId!)).toBeDefined();

    // Every job of b's entry was canceled meanwhile: only the entry is left to forget.
    await store().cancel(tenant, b.id);
    expect(await store().finish([], [b.dispatchId!])).toEqual([]);
    expect(await dispatchRow(database(), b.dispatchId!)).toBeUndefined();
  });

  it("stores a result as the JSON text the worker serialised", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    const text = '{"outputs":[{"name":"y","data":[1.5,2]}],"note":"caf\\u00e9 \\"quoted\\""}';
    await store().finish([{ id: job.id, status: "succeeded", resultJson: text }]);
    const { rows } = await database().pool.query<{ result: string }>(
      `select result::text as result from jobs where id = $1`,
      [job.id],
    );
    expect(rows[0]!.result).toBe(text);
  });

  it("writes a group whose results exceed one statement's budget (32 MiB) in several, forgetting the entry once", async () => {
    const tenant = await createTenant(database());
    const entry = crypto.randomUUID();
    const jobs = [newJob(tenant, { dispatchId: entry }), newJob(tenant, { dispatchId: entry })];
    await store().insertMany(jobs);
    const big = (n: number) => JSON.stringify({ pad: String(n).repeat(17 * 1024 * 1024) });
    const finished = await store().finish(
      jobs.map((j, n) => ({ id: j.id, status: "succeeded", resultJson: big(n) })),
      [entry],
    );
    expect(finished.map((f) => f.id).sort()).toEqual(jobs.map((j) => j.id).sort());
    const { rows } = await database().pool.query<{ n: number }>(
      `select length(result::text)::int as n from jobs where "dispatchId" = $1`,
      [entry],
    );
    expect(rows.map((r) => r.n)).toEqual([big(0).length, big(1).length]);
    expect(await dispatchRow(database(), entry)).toBeUndefined();
  });

  it("fails the group with a row fault (22P05) on an error message PostgreSQL cannot store, writing none of it", async () => {
    const tenant = await createTenant(database());
    const [good, bad] = [newJob(tenant), newJob(tenant)];
    await store().insertMany([good, bad]);
    const err = await store()
      .finish([
        { id: good.id, status: "succeeded", resultJson: "{}" },
        { id: bad.id, status: "failed", errorCode: "e", errorMessage: "nul\u0000" },
      ])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "22P05" });
    expect(isRowFault(err)).toBe(true);
    expect((await jobRow(database(), good.id))?.status).toBe("queued");
  });
});
