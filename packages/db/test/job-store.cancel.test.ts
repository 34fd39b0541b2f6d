import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.cancel", () => {
  it("cancels a queued or a running job of the tenant and returns it, with its queue entry", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook" };
    const [queued, running] = [newJob(tenant, { webhook }), newJob(tenant)];
    await store().insertMany([queued, running]);
    await store().claim([running.id]);

    expect(await store().cancel(tenant, queued.id)).toEqual({
      id: queued.id,
      tenantId: tenant,
      status: "canceled",
      model: "iris",
      webhook,
      cacheKey: null,
      dispatchId: queued.dispatchId,
    });
    expect(await store().cancel(tenant, running.id)).toEqual({
      id: running.id,
      tenantId: tenant,
      status: "canceled",
      model: "iris",
      webhook: null,
      cacheKey: null,
      dispatchId: running.dispatchId,
    });
    expect(await jobRow(database(), running.id)).toMatchObject({ status: "canceled", attempts: 1 });
    expect((await jobRow(database(), queued.id))?.completedAt).toBeInstanceOf(Date);
  });

  it("leaves the queue entry's dispatch row to its caller (the outcome path takes the job off it: DispatchStore.takeOff)", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().cancel(tenant, job.id);
    expect(await dispatchRow(database(), job.dispatchId!)).toMatchObject({ jobs: 1 });
  });

  it("does not cancel another tenant's job", async () => {
    const [owner, other] = [await createTenant(database()), await createTenant(database())];
    const job = newJob(owner);
    await store().insertMany([job]);
    expect(await store().cancel(other, job.id)).toBeUndefined();
    expect((await jobRow(database(), job.id))?.status).toBe("queued");
  });

  it("does not cancel a terminal job, nor a canceled one twice", async () => {
    const tenant = await createTenant(database());
    const [done, canceled] = [newJob(tenant), newJob(tenant)];
    await store().insertMany([done, canceled]);
    await store().finish([{ id: done.id, status: "succeeded", resultJson: "{}" }]);
    await store().cancel(tenant, canceled.id);
    const completedAt = (await jobRow(database(), canceled.id))?.completedAt;

    expect(await store().cancel(tenant, done.id)).toBeUndefined();
    expect(await store().cancel(tenant, canceled.id)).toBeUndefined();
    expect((await jobRow(database(), done.id))?.status).toBe("succeeded");
    expect((await jobRow(database(), canceled.id))?.completedAt).toEqual(completedAt);
  });

  it("keeps its state under a racing finish: exactly one of them takes the job", async () => {
    const tenant = await createTenant(database());
    const jobs = Array.from({ length: 20 }, () => newJob(tenant));
    await store().insertMany(jobs);
    await store().claim(jobs.map((j) => j.id));

    const [finished, ...cancels] = await Promise.all([
      store().finish(jobs.map((j) => ({ id: j.id, status: "succeeded" as const, resultJson: "{}" }))),
      ...jobs.map((j) => store().cancel(tenant, j.id)),
    ]);
    const canceled = new Set(cancels.flatMap((c) => (c ? [c.id] : [])));
    const succeeded = new Set(finished.map((f) => f.id));
    for (const job of jobs) {
      expect(canceled.has(job.id) !== succeeded.has(job.id)).toBe(true);
      expect((await jobRow(database(), job.id))?.status).toBe(canceled.has(job.id) ? "canceled" : "succeeded");
    }
  });

  it("cancels nothing when the caller's transaction rolls back", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await expect(
      database().transaction(async (client) => {
        expect(await store().cancel(tenant, job.id, client)).toBeDefined();
        throw new Error("abandon");
      }),
    ).rejects.toThrow("abandon");
    expect((await jobRow(database(), job.id))?.status).toBe("queued");
  });
});
