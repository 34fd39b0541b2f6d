import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

/** An entry of `n` jobs (priority high, model m/2) as insertMany writes it. */
async function entryOf(n: number) {
  const tenant = await createTenant(database());
  const entry = crypto.randomUUID();
  const jobs = Array.from({ length: n }, () =>
    newJob(tenant, { dispatchId: entry, model: "m", version: "2", priority: "high" }),
  );
  await store().insertMany(jobs);
  return { tenant, entry, jobs };
}

describe("JobStore.isolate", () => {
  it("moves each job onto an entry of its own: a new dispatch row and the job's dispatchId", async () => {
    const { entry, jobs } = await entryOf(3);
    const moved = await store().isolate(entry, [jobs[0]!.id, jobs[1]!.id], { removeEntry: false });

    expect(moved.map((m) => m.jobId).sort()).toEqual([jobs[0]!.id, jobs[1]!.id].sort());
    expect(new Set(moved.map((m) => m.dispatchId)).size).toBe(2);
    for (const m of moved) {
      expect(m).toMatchObject({ model: "m", version: "2", priority: "high" });
      expect(m.dispatchId).not.toBe(entry);
      expect(await dispatchRow(database(), m.dispatchId)).toEqual({
        model: "m",
        version: "2",
        priority: "high",
        jobs: 1,
        jobIds: [m.jobId],
        batchChunk: false,
      });
      expect((await jobRow(database(), m.jobId))?.dispatchId).toBe(m.dispatchId);
    }
    expect((await jobRow(database(), jobs[2]!.id))?.dispatchId).toBe(entry);
  });

  it("keeps the tenant on the new entries, so their jobs still count toward its queue and quota", async () => {
    const { tenant, entry, jobs } = await entryOf(2);
    const moved = await store().isolate(entry, [jobs[0]!.id], { removeEntry: false });
    const { rows } = await database().pool.query<{ tenantId: string }>(
      `select "tenantId" from dispatches where id = $1`,
      [moved[0]!.dispatchId],
    );
    expect(rows[0]?.tenantId).toBe(tenant);
  });

  it("keeps the old entry's dispatch row unless asked to remove it", async () => {
    const kept = await entryOf(2);
    await store().isolate(kept.entry, [kept.jobs[0]!.id], { removeEntry: false });
    expect(await dispatchRow(database(), kept.entry)).toMatchObject({ jobs: 2 });

    const removed = await entryOf(2);
    await store().isolate(
      removed.entry,
      removed.jobs.map((j) => j.id),
      { removeEntry: true },
    );
    expect(await dispatchRow(database(), removed.entry)).toBeUndefined();
  });

  it("leaves terminal jobs where they are and makes no entry for them", async () => {
    const { tenant, entry, jobs } = await entryOf(3);
    await store().claim([jobs[0]!.id]);
    await store().finish([{ id: jobs[1]!.id, status: "succeeded", resultJson: "{}" }]);
    await store().cancel(tenant, jobs[2]!.id);

    const moved = await store().isolate(
      entry,
      jobs.map((j) => j.id),
      { removeEntry: true },
    );
    expect(moved.map((m) => m.jobId)).toEqual([jobs[0]!.id]);
    expect((await jobRow(database(), jobs[1]!.id))?.dispatchId).toBe(entry);
    expect((await jobRow(database(), jobs[2]!.id))?.dispatchId).toBe(entry);
    const { rows } = await database().pool.query(
      `select 1 from dispatches where $1 = any("jobIds") or $2 = any("jobIds")`,
      [jobs[1]!.id, jobs[2]!.id],
    );
    expect(rows).toEqual([]);
  });

  it("isolating the same entry again (its worker died before adding the entries) makes the same rows, none left behind", async () => {
    const { entry, jobs } = await entryOf(3);
    const ids = jobs.map((j) => j.id);
    const first = await store().isolate(entry, ids, { removeEntry: true });
    await store().finish(
      [{ id: jobs[0]!.id, status: "succeeded", resultJson: "{}" }],
      [first.find((m) => m.jobId === jobs[0]!.id)!.dispatchId],
    );
    const again = await store().isolate(entry, ids, { removeEntry: true });

    const byJob = (moved: typeof first) => Object.fromEntries(moved.map((m) => [m.jobId, m.dispatchId]));
    expect(byJob(again)).toEqual({
      [jobs[1]!.id]: byJob(first)[jobs[1]!.id],
      [jobs[2]!.id]: byJob(first)[jobs[2]!.id],
    });
    const { rows } = await database().pool.query<{ id: string }>(
      `select id from dispatches where "jobIds" && $1::uuid[]`,
      [ids],
    );
    expect(rows.map((r) => r.id).sort()).toEqual(again.map((m) => m.dispatchId).sort());
    for (const m of again) expect((await jobRow(database(), m.jobId))?.dispatchId).toBe(m.dispatchId);
  });

  it("gives the same job of another entry another new entry", async () => {
    const { entry, jobs } = await entryOf(1);
    const [first] = await store().isolate(entry, [jobs[0]!.id], { removeEntry: false });
    const [second] = await store().isolate(first!.dispatchId, [jobs[0]!.id], { removeEntry: true });
    expect(second!.dispatchId).not.toBe(first!.dispatchId);
    expect(await dispatchRow(database(), first!.dispatchId)).toBeUndefined();
    expect(await dispatchRow(database(), second!.dispatchId)).toMatchObject({ jobs: 1, jobIds: [jobs[0]!.id] });
  });

  it("does nothing for no jobs, not even remove the entry", async () => {
    const { entry } = await entryOf(1);
    expect(await store().isolate(entry, [], { removeEntry: true })).toEqual([]);
    expect(await dispatchRow(database(), entry)).toBeDefined();
  });

  it("writes nothing when the caller's transaction rolls back", async () => {
    const { entry, jobs } = await entryOf(1);
    await expect(
      database().transaction(async (client) => {
        await store().isolate(entry, [jobs[0]!.id], { removeEntry: true }, client);
        throw new Error("abandon");
      }),
    ).rejects.toThrow("abandon");
    expect((await jobRow(database(), jobs[0]!.id))?.dispatchId).toBe(entry);
    expect(await dispatchRow(database(), entry)).toMatchObject({ jobs: 1 });
  });
});
