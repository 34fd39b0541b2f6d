import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.isQueued", () => {
  it("is true only for a job still queued: not once canceled or claimed, nor for an unknown id", async () => {
    const tenant = await createTenant(database());
    const [queued, canceled, claimed] = [newJob(tenant), newJob(tenant), newJob(tenant)];
    await store().insertMany([queued, canceled, claimed]);
    await store().cancel(tenant, canceled.id);
    await store().claim([claimed.id]);
    expect(await store().isQueued(queued.id)).toBe(true);
    expect(await store().isQueued(canceled.id)).toBe(false);
    expect(await store().isQueued(claimed.id)).toBe(false);
    expect(await store().isQueued(crypto.randomUUID())).toBe(false);
  });
});
