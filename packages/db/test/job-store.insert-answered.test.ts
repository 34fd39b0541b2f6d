import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore, toJobView, type AnsweredJob } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

function answered(tenant: string, resultJson: string, overrides: Partial<AnsweredJob> = {}): AnsweredJob {
  return {
    ...newJob(tenant, { dispatchId: null, cacheKey: crypto.randomUUID() }),
    resultJson,
    answeredAt: new Date(),
    ...overrides,
  };
}

describe("JobStore.insertAnswered", () => {
  it("stores the jobs succeeded with the cached result text as it is, cached, started and completed when answered, and returns them as finished", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook" };
    // Spacing and key order of the cached text are kept: the column is json, not jsonb.
    const text = '{"model_name":"iris", "outputs":[{"name":"p","data":[1.0]}],"a":1}';
    const at = new Date("2026-12-04T10:00:00.123Z");
    const job = answered(tenant, text, { webhook, answeredAt: at });

    expect(await store().insertAnswered([job])).toEqual([
      { id: job.id, tenantId: tenant, status: "succeeded", model: "iris", webhook, cacheKey: job.cacheKey },
    ]);

    const { rows } = await database().pool.query<{
      text: string;
      cached: boolean;
      startedAt: Date;
      completedAt: Date;
      dispatchId: string | null;
      attempts: number;
    }>(
      `select result::text as text, cached, "startedAt", "completedAt", "dispatchId", attempts from jobs where id = $1`,
      [job.id],
    );
    expect(rows[0]).toEqual({ text, cached: true, startedAt: at, completedAt: at, dispatchId: null, attempts: 0 });
    const view = toJobView((await store().get(tenant, job.id))!);
    expect(view).toMatchObject({
      status: "succeeded",
      cached: true,
      attempts: 0,
      result: JSON.parse(text),
      startedAt: at.toISOString(),
      completedAt: at.toISOString(),
    });
  });

  it("writes no dispatch row, so answered jobs never count as queued work", async () => {
    const tenant = await createTenant(database());
    await store().insertAnswered([answered(tenant, "{}"), answered(tenant, "{}")]);
    const { rows } = await database().pool.query<{ n: number }>(
      `select count(*)::int as n from dispatches where "tenantId" = $1`,
      [tenant],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it("keeps a job view without `cached` for jobs that ran", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().finish([{ id: job.id, status: "succeeded", resultJson: "{}" }]);
    expect(toJobView((await store().get(tenant, job.id))!)).not.toHaveProperty("cached");
  });
});
