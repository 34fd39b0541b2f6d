import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob, tensor } from "./support/rows.ts";
import { dispatchStartedAt, fromNow, jobDeadlines, setJobDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.claim", () => {
  it("marks queued jobs running, counts the attempt and returns what the run needs", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant, {
      model: "m",
      version: "2",
      inputs: [tensor(4)],
      requestedOutputs: ["y"],
      cacheKey: "d1",
      traceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    await store().insertMany([job]);
    expect(await store().claim([job.id])).toEqual({
      claimed: [
        {
          id: job.id,
          tenantId: tenant,
          model: "m",
          version: "2",
          inputs: [tensor(4)],
          requestedOutputs: ["y"],
          attempts: 1,
          cacheKey: "d1",
          traceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          standalone: true,
        },
      ],
      overdue: [],
    });
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "running", attempts: 1, completedAt: null });
    expect((await jobRow(database(), job.id))?.startedAt).toBeInstanceOf(Date);
  });

  it("calls a job standalone only without a webhook and without a single flight led, and a row older than the column never", async () => {
    const tenant = await createTenant(database());
    const [plain, hooked, leader, legacy] = [
      newJob(tenant, { cacheKey: "d1" }),
      newJob(tenant, { webhook: { url: "https://example.com/hook" } }),
      newJob(tenant, { cacheKey: "d2", leadsFlight: true }),
      newJob(tenant, { cacheKey: "d3" }),
    ];
    await store().insertMany([plain, hooked, leader, legacy]);
    // As an API that predates the column stores it: unknown, so written as a possible leader.
    await database().pool.query(`update jobs set "leadsFlight" = null where id = $1`, [legacy.id]);
    const { claimed } = await store().claim([plain.id, hooked.id, leader.id, legacy.id]);
    const standalone = Object.fromEntries(claimed.map((c) => [c.id, c.standalone]));
    expect(standalone).toEqual({ [plain.id]: true, [hooked.id]: false, [leader.id]: false, [legacy.id]: false });
  });

  it("claims a running job again (a retry), counting each attempt and keeping the first start time", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().claim([job.id]);
    const started = (await jobRow(database(), job.id))?.startedAt;
    const [again] = (await store().claim([job.id])).claimed;
    expect(again?.attempts).toBe(2);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "running", attempts: 2, startedAt: started });
  });

  it("skips terminal jobs without counting an attempt, so a canceled or finished job never runs", async () => {
    const tenant = await createTenant(database());
    const [canceled, succeeded, queued] = [newJob(tenant), newJob(tenant), newJob(tenant)];
    await store().insertMany([canceled, succeeded, queued]);
    await store().cancel(tenant, canceled.id);
    await store().finish([{ id: succeeded.id, status: "succeeded", resultJson: "{}" }]);

    const { claimed, overdue } = await store().claim([canceled.id, succeeded.id, queued.id]);
    expect(claimed.map((c) => c.id)).toEqual([queued.id]);
    expect(overdue).toEqual([]);
    expect(await jobRow(database(), canceled.id)).toMatchObject({ status: "canceled", attempts: 0 });
    expect(await jobRow(database(), succeeded.id)).toMatchObject({ status: "succeeded", attempts: 0 });
  });

  it("skips a queued job past its queue deadline and any job past its Cancel-After time, leaving both as they are and naming them", async () => {
    const tenant = await createTenant(database());
    const [late, canceled, runningLate, fine] = [
      newJob(tenant, { queueDeadline: fromNow(-1) }),
      newJob(tenant, { cancelAt: fromNow(-1) }),
      newJob(tenant),
      newJob(tenant, { queueDeadline: fromNow(60), cancelAt: fromNow(60) }),
    ];
    await store().insertMany([late, canceled, runningLate, fine]);
    // A running job has started: a queue deadline (were one left) no longer applies to it.
    await store().claim([runningLate.id]);
    await setJobDeadlines(database(), runningLate.id, { queueDeadline: fromNow(-1) });

    const { claimed, overdue } = await store().claim([late.id, canceled.id, runningLate.id, fine.id]);
    expect(claimed.map((c) => c.id).sort()).toEqual([runningLate.id, fine.id].sort());
    expect(overdue.sort()).toEqual([late.id, canceled.id].sort());
    expect(await jobRow(database(), late.id)).toMatchObject({ status: "queued", attempts: 0, startedAt: null });
    expect(await jobRow(database(), canceled.id)).toMatchObject({ status: "queued", attempts: 0, startedAt: null });
  });

  it("clears a claimed job's queue deadline, which no longer applies, and keeps its Cancel-After time", async () => {
    const tenant = await createTenant(database());
    const cancelAt = fromNow(60);
    const job = newJob(tenant, { queueDeadline: fromNow(60), cancelAt });
    await store().insertMany([job]);
    await store().claim([job.id]);
    expect(await jobDeadlines(database(), job.id)).toEqual({ queueDeadline: null, cancelAt });
  });

  it("marks the queue entry started at its first claim, and not when it claimed nothing", async () => {
    const tenant = await createTenant(database());
    const [job, late] = [newJob(tenant), newJob(tenant, { queueDeadline: fromNow(-1) })];
    await store().insertMany([job, late]);
    expect(await dispatchStartedAt(database(), job.dispatchId!)).toBeNull();

    await store().claim([job.id], job.dispatchId!);
    const started = await dispatchStartedAt(database(), job.dispatchId!);
    expect(started).toBeInstanceOf(Date);
    await store().claim([job.id], job.dispatchId!);
    expect(await dispatchStartedAt(database(), job.dispatchId!)).toEqual(started);

    expect(await store().claim([late.id], late.dispatchId!)).toEqual({ claimed: [], overdue: [late.id] });
    expect(await dispatchStartedAt(database(), late.dispatchId!)).toBeNull();
  });

  it("ignores ids that name no job", async () => {
    expect(await store().claim([crypto.randomUUID()])).toEqual({ claimed: [], overdue: [] });
    expect(await store().claim([])).toEqual({ claimed: [], overdue: [] });
  });
});
