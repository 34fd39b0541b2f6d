import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob } from "./support/rows.ts";
import { fromNow, jobDeadlines, setJobDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

// Each test leaves no job past its Cancel-After time behind, so the next one's pages see only its own.
describe("JobStore.cancelOverdue", () => {
  it("cancels queued and running jobs past their Cancel-After time; a running one's late result then changes nothing", async () => {
    const tenant = await createTenant(database());
    const [queued, running, later] = [
      newJob(tenant, { cancelAt: fromNow(-1) }),
      newJob(tenant, { cancelAt: fromNow(60) }),
      newJob(tenant, { cancelAt: fromNow(60) }),
    ];
    await store().insertMany([queued, running, later]);
    await store().claim([running.id]);
    await setJobDeadlines(database(), running.id, { cancelAt: fromNow(-1) });

    const page = await store().cancelOverdue(10);
    expect(page.due).toBe(2);
    expect(page.finished.map((j) => j.id).sort()).toEqual([queued.id, running.id].sort());
    expect(page.finished.every((j) => j.status === "canceled")).toBe(true);
    expect(await jobDeadlines(database(), running.id)).toEqual({ queueDeadline: null, cancelAt: null });

    expect(await store().finish([{ id: running.id, status: "succeeded", resultJson: "{}" }])).toEqual([]);
    expect(await jobRow(database(), running.id)).toMatchObject({ status: "canceled", result: null, attempts: 1 });
    expect((await jobRow(database(), later.id))?.status).toBe("queued");
  });

  it("only clears a passed Cancel-After time left on a terminal job", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    await store().finish([{ id: job.id, status: "succeeded", resultJson: "{}" }]);
    await setJobDeadlines(database(), job.id, { cancelAt: fromNow(-1) });

    expect(await store().cancelOverdue(10)).toEqual({ due: 1, finished: [] });
    expect((await jobRow(database(), job.id))?.status).toBe("succeeded");
    expect((await jobDeadlines(database(), job.id))?.cancelAt).toBeNull();
  });

  it("takes at most a page, earliest first, skipping jobs another transaction holds", async () => {
    const tenant = await createTenant(database());
    const [held, first, second] = [
      newJob(tenant, { cancelAt: fromNow(-3) }),
      newJob(tenant, { cancelAt: fromNow(-2) }),
      newJob(tenant, { cancelAt: fromNow(-1) }),
    ];
    await store().insertMany([held, first, second]);
    const other = await database().pool.connect();
    try {
      await other.query("begin");
      await other.query(`select id from jobs where id = $1 for update`, [held.id]);
      expect((await store().cancelOverdue(1)).finished.map((j) => j.id)).toEqual([first.id]);
      await other.query("rollback");
    } finally {
      other.release();
    }
    expect((await store().cancelOverdue(10)).finished.map((j) => j.id).sort()).toEqual([held.id, second.id].sort());
  });
});
