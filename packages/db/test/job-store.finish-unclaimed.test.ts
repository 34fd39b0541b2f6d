import { describe, expect, it } from "vitest";
import { JobStore, toJobView } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);
const RESULT = { model_name: "iris", model_version: "1", outputs: [] };

describe("JobStore.finishUnclaimed", () => {
  it("writes a queued job's outcome with its attempt counted and the run's start, forgets its entry, and gives its view", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    const startedAt = new Date(Date.now() - 5);
    const [finished] = await store().finishUnclaimed(
      { id: job.id, status: "succeeded", resultJson: JSON.stringify(RESULT) },
      job.dispatchId!,
      startedAt,
    );
    expect(finished).toMatchObject({ id: job.id, status: "succeeded", tenantId: tenant });
    const row = await jobRow(database(), job.id);
    expect(row).toMatchObject({ status: "succeeded", attempts: 1, result: RESULT, startedAt });
    expect(await dispatchRow(database(), job.dispatchId!)).toBeUndefined();
    expect(finished!.viewJson).toBe(JSON.stringify(toJobView((await store().get(tenant, job.id))!)));
  });

  it("writes a failure with its code and message, and no result", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    const [finished] = await store().finishUnclaimed(
      { id: job.id, status: "failed", errorCode: "inference_error", errorMessage: "index 7 is out of range" },
      job.dispatchId!,
      new Date(),
    );
    expect(finished).toMatchObject({ id: job.id, status: "failed" });
    expect(await jobRow(database(), job.id)).toMatchObject({
      status: "failed",
      attempts: 1,
      result: null,
      errorCode: "inference_error",
      errorMessage: "index 7 is out of range",
    });
    expect(await dispatchRow(database(), job.dispatchId!)).toBeUndefined();
  });

  it("writes nothing, and keeps the entry, for a job that is not queued any more (canceled, or claimed by another run)", async () => {
    const tenant = await createTenant(database());
    const [canceled, claimed] = [newJob(tenant), newJob(tenant)];
    await store().insertMany([canceled, claimed]);
    await store().cancel(tenant, canceled.id);
    await store().claim([claimed.id]);
    for (const job of [canceled, claimed]) {
      expect(
        await store().finishUnclaimed(
          { id: job.id, status: "succeeded", resultJson: JSON.stringify(RESULT) },
          job.dispatchId!,
          new Date(),
        ),
      ).toEqual([]);
      expect((await jobRow(database(), job.id))?.result).toBeNull();
      expect(await dispatchRow(database(), job.dispatchId!)).toBeDefined();
    }
    expect(await jobRow(database(), canceled.id)).toMatchObject({ status: "canceled", attempts: 0 });
    expect(await jobRow(database(), claimed.id)).toMatchObject({ status: "running", attempts: 1 });
  });

  it("writes nothing for a job with a deadline (those are claimed, so a deadline sweep cannot end one mid-run)", async () => {
    const tenant = await createTenant(database());
    const [queueDeadline, cancelAt] = [
      newJob(tenant, { queueDeadline: new Date(Date.now() + 60_000) }),
      newJob(tenant, { cancelAt: new Date(Date.now() + 60_000) }),
    ];
    await store().insertMany([queueDeadline, cancelAt]);
    for (const job of [queueDeadline, cancelAt]) {
      expect(
        await store().finishUnclaimed(
          { id: job.id, status: "failed", errorCode: "inference_error", errorMessage: "x" },
          job.dispatchId!,
          new Date(),
        ),
      ).toEqual([]);
      expect(await jobRow(database(), job.id)).toMatchObject({ status: "queued", attempts: 0 });
    }
  });
});
