import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob } from "./support/rows.ts";
import { fromNow, jobDeadlines, setJobDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

// Each test leaves no job past its deadline behind, so the next one's pages see only its own.
describe("JobStore.expireOverdue", () => {
  it("expires queued jobs past their queue deadline, earliest first, a page at a time", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook" };
    const jobs = [
      newJob(tenant, { queueDeadline: fromNow(-1), webhook }),
      newJob(tenant, { queueDeadline: fromNow(-3) }),
      newJob(tenant, { queueDeadline: fromNow(-2) }),
    ];
    const waiting = newJob(tenant, { queueDeadline: fromNow(60) });
    await store().insertMany([...jobs, waiting]);

    const first = await store().expireOverdue(2);
    expect(first.due).toBe(2);
    expect(first.finished.map((j) => j.id).sort()).toEqual([jobs[1]!.id, jobs[2]!.id].sort());
    const second = await store().expireOverdue(2);
    expect(second).toEqual({
      due: 1,
      finished: [
        {
          id: jobs[0]!.id,
          tenantId: tenant,
          status: "expired",
          model: "iris",
          webhook,
          cacheKey: null,
          dispatchId: jobs[0]!.dispatchId,
        },
      ],
    });
    expect(await store().expireOverdue(2)).toEqual({ due: 0, finished: [] });

    for (const job of jobs)
      expect(await jobRow(database(), job.id)).toMatchObject({
        status: "expired",
        errorCode: "deadline_exceeded",
        attempts: 0,
      });
    expect((await jobRow(database(), waiting.id))?.status).toBe("queued");
  });

  it("only clears a passed deadline left on a job that is no longer queued", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().claim([job.id]);
    await setJobDeadlines(database(), job.id, { queueDeadline: fromNow(-1) });

    expect(await store().expireOverdue(10)).toEqual({ due: 1, finished: [] });
    expect((await jobRow(database(), job.id))?.status).toBe("running");
    expect((await jobDeadlines(database(), job.id))?.queueDeadline).toBeNull();
  });

  it("skips jobs another transaction holds (a claim, another sweep) and takes them on a later page", async () => {
    const tenant = await createTenant(database());
    const [held, free] = [
      newJob(tenant, { queueDeadline: fromNow(-2) }),
      newJob(tenant, { queueDeadline: fromNow(-1) }),
    ];
    await store().insertMany([held, free]);
    const other = await database().pool.connect();
    try {
      await other.query("begin");
      await other.query(`select id from jobs where id = $1 for update`, [held.id]);
      const page = await store().expireOverdue(10);
      expect(page.finished.map((j) => j.id)).toEqual([free.id]);
      await other.query("rollback");
    } finally {
      other.release();
    }
    expect((await store().expireOverdue(10)).finished.map((j) => j.id)).toEqual([held.id]);
  });
});
