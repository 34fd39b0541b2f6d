import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob } from "./support/rows.ts";
import { fromNow, jobDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

describe("JobStore.endOverdue", () => {
  it("expires a queued job past its queue deadline, saying which deadline, and clears its deadlines", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook" };
    const createdAt = new Date(Date.now() - 5000);
    const job = newJob(tenant, {
      webhook,
      createdAt,
      queueDeadline: new Date(createdAt.getTime() + 2000),
      cancelAt: fromNow(60),
    });
    await store().insertMany([job]);

    expect(await store().endOverdue([job.id])).toEqual([
      {
        id: job.id,
        tenantId: tenant,
        status: "expired",
        model: "iris",
        webhook,
        cacheKey: null,
        dispatchId: job.dispatchId,
      },
    ]);
    const row = await jobRow(database(), job.id);
    expect(row).toMatchObject({
      status: "expired",
      attempts: 0,
      startedAt: null,
      errorCode: "deadline_exceeded",
      errorMessage: "not started within its queue deadline of 2 s (maxQueueSeconds)",
    });
    expect(row?.completedAt).toBeInstanceOf(Date);
    expect(await jobDeadlines(database(), job.id)).toEqual({ queueDeadline: null, cancelAt: null });
  });

  it("cancels a queued or running job past its Cancel-After time, without an error", async () => {
    const tenant = await createTenant(database());
    const [queued, running] = [newJob(tenant, { cancelAt: fromNow(-1) }), newJob(tenant, { cancelAt: fromNow(60) })];
    await store().insertMany([queued, running]);
    await store().claim([running.id]);
    await database().pool.query(`update jobs set "cancelAt" = now() - interval '1 second' where id = $1`, [running.id]);

    const ended = await store().endOverdue([queued.id, running.id]);
    expect(ended.map((j) => j.status)).toEqual(["canceled", "canceled"]);
    expect(await jobRow(database(), running.id)).toMatchObject({ status: "canceled", attempts: 1, errorCode: null });
    expect(await jobDeadlines(database(), queued.id)).toEqual({ queueDeadline: null, cancelAt: null });
  });

  it("lets the earlier deadline decide when both have passed", async () => {
    const tenant = await createTenant(database());
    const [expires, cancels] = [
      newJob(tenant, { queueDeadline: fromNow(-2), cancelAt: fromNow(-1) }),
      newJob(tenant, { queueDeadline: fromNow(-1), cancelAt: fromNow(-2) }),
    ];
    await store().insertMany([expires, cancels]);
    await store().endOverdue([expires.id, cancels.id]);
    expect((await jobRow(database(), expires.id))?.status).toBe("expired");
    expect((await jobRow(database(), cancels.id))?.status).toBe("canceled");
  });

  it("leaves jobs that are not overdue, and terminal ones, alone", async () => {
    const tenant = await createTenant(database());
    const [waiting, plain, done] = [
      newJob(tenant, { queueDeadline: fromNow(60), cancelAt: fromNow(60) }),
      newJob(tenant),
      newJob(tenant, { cancelAt: fromNow(-1) }),
    ];
    await store().insertMany([waiting, plain, done]);
    await database().pool.query(`update jobs set status = 'succeeded' where id = $1`, [done.id]);

    expect(await store().endOverdue([waiting.id, plain.id, done.id])).toEqual([]);
    expect((await jobRow(database(), waiting.id))?.status).toBe("queued");
    expect((await jobRow(database(), done.id))?.status).toBe("succeeded");
    expect(await store().endOverdue([])).toEqual([]);
  });
});
