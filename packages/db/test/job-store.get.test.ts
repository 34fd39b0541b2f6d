import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore, toJobView } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.get", () => {
  it("returns the tenant's job, and null for another tenant's or an unknown id", async () => {
    const [owner, other] = [await createTenant(database()), await createTenant(database())];
    const job = newJob(owner, { metadata: { k: "v" } });
    await store().insertMany([job]);

    expect(await store().get(owner, job.id)).toMatchObject({
      id: job.id,
      tenantId: owner,
      status: "queued",
      metadata: { k: "v" },
    });
    expect(await store().get(other, job.id)).toBeNull();
    expect(await store().get(owner, crypto.randomUUID())).toBeNull();
  });

  it("reads a row that toJobView shows as the API does", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant, { metadata: { k: "v" }, priority: "low" });
    await store().insertMany([job]);
    await store().claim([job.id]);
    await store().finish([{ id: job.id, status: "failed", errorCode: "inference_error", errorMessage: "no" }]);

    const view = toJobView((await store().get(tenant, job.id))!);
    expect(view).toMatchObject({
      id: job.id,
      status: "failed",
      model: "iris",
      version: "1",
      priority: "low",
      attempts: 1,
      metadata: { k: "v" },
      error: { code: "inference_error", message: "no" },
    });
    expect(view.createdAt).toBe(job.createdAt.toISOString());
    expect(typeof view.startedAt).toBe("string");
    expect(typeof view.completedAt).toBe("string");
    expect(view.result).toBeUndefined();
  });
});
