import { describe, expect, it } from "vitest";
import { InvalidCursorError } from "@inferline/contracts";
import { JobStore, type NewJob } from "@inferline/db";
import { JobListQuery } from "@inferline/contracts";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = (listScanRows?: number) => new JobStore(database().pool, database().prisma, { listScanRows });

/** Every page of a listing, following the cursors to the end. */
async function allPages(tenantId: string, query: Partial<JobListQuery>, listScanRows?: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store(listScanRows).list(tenantId, JobListQuery.parse({ ...query, cursor }));
    pages.push(page.jobs.map((j) => j.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Newest first, as the listing orders them: createdAt, then id, both descending. */
function newestFirst(jobs: NewJob[]): string[] {
  return [...jobs]
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
    .map((j) => j.id);
}

describe("JobStore.list", () => {
  it("pages newest first without skipping or repeating a job, also among jobs created in the same millisecond", async () => {
    const tenant = await createTenant(database());
    const base = Date.UTC(2026, 0, 1);
    // Four instants, five jobs each: every page boundary falls among ties at some point.
    const jobs = Array.from({ length: 20 }, (_, i) =>
      newJob(tenant, { createdAt: new Date(base + Math.floor(i / 5)) }),
    );
    await store().insertMany(jobs);

    const pages = await allPages(tenant, { limit: 3 });
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 3, 3, 3, 2]);
    expect(pages.flat()).toEqual(newestFirst(jobs));
  });

  it("ends with a null cursor on a page that is exactly full", async () => {
    const tenant = await createTenant(database());
    await store().insertMany([newJob(tenant), newJob(tenant)]);
    const page = await store().list(tenant, JobListQuery.parse({ limit: 2 }));
    expect(page.jobs).toHaveLength(2);
    expect(page.nextCursor).toBeNull();
  });

  it("shows a job submitted between two pages on neither, and the rest exactly once", async () => {
    const tenant = await createTenant(database());
    const jobs = Array.from({ length: 6 }, (_, i) =>
      newJob(tenant, { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }),
    );
    await store().insertMany(jobs);
    const first = await store().list(tenant, JobListQuery.parse({ limit: 3 }));
    await store().insertMany([newJob(tenant)]);
    const second = await store().list(tenant, JobListQuery.parse({ limit: 3, cursor: first.nextCursor }));
    expect([...first.jobs, ...second.jobs].map((j) => j.id)).toEqual(newestFirst(jobs));
    expect(second.nextCursor).toBeNull();
  });

  it("lists only the tenant's jobs, filtered by status and model", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const [a, b, c] = [newJob(tenant, { model: "a" }), newJob(tenant, { model: "b" }), newJob(tenant, { model: "a" })];
    await store().insertMany([a, b, c, newJob(other, { model: "a" })]);
    await store().cancel(tenant, c.id);

    expect((await allPages(tenant, {})).flat().sort()).toEqual([a.id, b.id, c.id].sort());
    expect((await allPages(tenant, { model: "a" })).flat().sort()).toEqual([a.id, c.id].sort());
    expect((await allPages(tenant, { model: "a", status: "queued" })).flat()).toEqual([a.id]);
    expect((await allPages(tenant, { status: "canceled", limit: 1 })).flat()).toEqual([c.id]);
  });

  it("reads at most listScanRows jobs for a status: a page with no match in them is empty but has a cursor; cursors find every match once, in order", async () => {
    const [tenant, other] = [await createTenant(database()), await createTenant(database())];
    const base = Date.UTC(2026, 0, 1);
    // 3,000 jobs; pairs share a millisecond, so scans end among ties.
    const at = (i: number) => new Date(base + Math.floor(i / 2));
    const jobs = Array.from({ length: 3000 }, (_, i) => newJob(tenant, { createdAt: at(i), model: i % 3 ? "a" : "b" }));
    const others = Array.from({ length: 50 }, () => newJob(other));
    await store().insertMany([...jobs, ...others]);
    const listed = newestFirst(jobs);
    // None among the newest 500 (one scan's worth), a run of 25 that fills pages, a few apart, the oldest.
    const failed = [...range(600, 625), 900, 999, 1000, 1499, 1500, 2200, 2999].map((i) => listed[i]!);
    const fail = `update jobs set status = 'failed' where id = any($1::uuid[])`;
    await database().pool.query(fail, [[...failed, others[0]!.id]]);

    const first = await store(500).list(tenant, JobListQuery.parse({ status: "failed", limit: 10 }));
    expect(first.jobs).toEqual([]);
    expect(first.nextCursor).not.toBeNull();

    const pages = await allPages(tenant, { status: "failed", limit: 10 }, 500);
    expect(pages.flat()).toEqual(failed);
    expect(Math.max(...pages.map((p) => p.length))).toBe(10);
    const ofModel = failed.filter((id) => jobs.find((j) => j.id === id)!.model === "b");
    expect((await allPages(tenant, { status: "failed", model: "b", limit: 10 }, 500)).flat()).toEqual(ofModel);
    // Without a status every job matches: pages are full whatever the bound.
    expect((await allPages(tenant, { model: "b", limit: 500 }, 500)).map((p) => p.length)).toEqual([500, 500]);
  });

  it("refuses a cursor it did not make with InvalidCursorError, before any statement", async () => {
    const tenant = await createTenant(database());
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const cursor of [
      "not-a-cursor",
      forged(["2026-01-01T00:00:00.000Z", "1; drop table jobs"]),
      forged(["yesterday", "00000000-0000-4000-8000-000000000000"]),
      forged({}),
    ]) {
      await expect(store().list(tenant, JobListQuery.parse({ cursor }))).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });
});
