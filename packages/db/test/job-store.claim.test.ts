import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob, tensor } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.claim", () => {
  it("marks queued jobs running, counts the attempt and returns what the run needs", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant, { model: "m", version: "2", inputs: [tensor(4)], requestedOutputs: ["y"] });
    await store().insertMany([job]);
    expect(await store().claim([job.id])).toEqual([{ id: job.id, tenantId: tenant, model: "m", version: "2", inputs: [tensor(4)], requestedOutputs: ["y"], attempts: 1 }]);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "running", attempts: 1, completedAt: null });
    expect((await jobRow(database(), job.id))?.startedAt).toBeInstanceOf(Date);
  });

  it("claims a running job again (a retry), counting each attempt and keeping the first start time", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().claim([job.id]);
    const started = (await jobRow(database(), job.id))?.startedAt;
    const [again] = await store().claim([job.id]);
    expect(again?.attempts).toBe(2);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "running", attempts: 2, startedAt: started });
  });

  it("skips terminal jobs without counting an attempt, so a canceled or finished job never runs", async () => {
    const tenant = await createTenant(database());
    const [canceled, succeeded, queued] = [newJob(tenant), newJob(tenant), newJob(tenant)];
    await store().insertMany([canceled, succeeded, queued]);
    await store().cancel(tenant, canceled.id);
    await store().finish([{ id: succeeded.id, status: "succeeded", resultJson: "{}" }]);

    const claimed = await store().claim([canceled.id, succeeded.id, queued.id]);
    expect(claimed.map((c) => c.id)).toEqual([queued.id]);
    expect(await jobRow(database(), canceled.id)).toMatchObject({ status: "canceled", attempts: 0 });
    expect(await jobRow(database(), succeeded.id)).toMatchObject({ status: "succeeded", attempts: 0 });
  });

  it("ignores ids that name no job", async () => {
    expect(await store().claim([crypto.randomUUID()])).toEqual([]);
    expect(await store().claim([])).toEqual([]);
  });
});
