import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore idempotency keys", () => {
  it("finds the tenant's job by its key, and nothing under another tenant", async () => {
    const [owner, other] = [await createTenant(database()), await createTenant(database())];
    const job = newJob(owner, { idempotencyKey: "order-1", requestHash: "h" });
    await store().insertMany([job]);

    expect(await store().findByIdempotencyKey(owner, "order-1")).toMatchObject({ id: job.id, requestHash: "h" });
    expect(await store().findByIdempotencyKey(other, "order-1")).toBeNull();
    expect(await store().findByIdempotencyKey(owner, "order-2")).toBeNull();
  });

  it("releases a key so a new job can use it, keeping the old job", async () => {
    const tenant = await createTenant(database());
    const old = newJob(tenant, { idempotencyKey: "order-3" });
    await store().insertMany([old]);
    await store().releaseIdempotencyKey(old.id);

    expect(await jobRow(database(), old.id)).toMatchObject({ status: "queued", idempotencyKey: null });
    expect(await store().findByIdempotencyKey(tenant, "order-3")).toBeNull();
    const reuse = newJob(tenant, { idempotencyKey: "order-3" });
    await store().insertMany([reuse]);
    expect((await store().findByIdempotencyKey(tenant, "order-3"))?.id).toBe(reuse.id);
  });
});
