import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);

async function entryStarted(id: string): Promise<boolean> {
  const { rows } = await database().pool.query<{ started: boolean }>(
    `select "startedAt" is not null as started from dispatches where id = $1`,
    [id],
  );
  return rows[0]!.started;
}

describe("JobStore.releaseClaims", () => {
  it("puts the entry's running jobs back to queued with the claim's attempt taken back, and the entry back to not started", async () => {
    const tenant = await createTenant(database());
    const entry = crypto.randomUUID();
    const [first, retried, canceled] = [
      newJob(tenant, { dispatchId: entry }),
      newJob(tenant, { dispatchId: entry }),
      newJob(tenant, { dispatchId: entry }),
    ];
    await store().insertMany([first, retried, canceled]);
    await store().claim([retried.id], entry);
    const startedBefore = (await jobRow(database(), retried.id))!.startedAt;
    await store().claim([first.id, retried.id, canceled.id], entry);
    await store().cancel(tenant, canceled.id);
    expect(await entryStarted(entry)).toBe(true);

    await store().releaseClaims([first.id, retried.id, canceled.id], entry);
    expect(await jobRow(database(), first.id)).toMatchObject({ status: "queued", attempts: 0, startedAt: null });
    // Its earlier run counts still, and so does when that one started.
    expect(await jobRow(database(), retried.id)).toMatchObject({
      status: "queued",
      attempts: 1,
      startedAt: startedBefore,
    });
    expect(await jobRow(database(), canceled.id)).toMatchObject({ status: "canceled", attempts: 1 });
    expect(await entryStarted(entry)).toBe(false);
    // The next claim counts its run as the first.
    expect((await store().claim([first.id], entry)).claimed).toMatchObject([{ id: first.id, attempts: 1 }]);
  });
});
