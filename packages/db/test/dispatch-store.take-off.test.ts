import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { DispatchStore, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant, dispatchRow, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const dispatches = () => new DispatchStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);
const takeOff = (ids: Array<string | null>) => database().transaction((client) => dispatches().takeOff(ids, client));

/** Three jobs of one tenant on one queue entry; returns the entry's id. */
async function entryOfThree(tenant: string): Promise<string> {
  const entry = crypto.randomUUID();
  await jobs().insertMany([
    newJob(tenant, { dispatchId: entry }),
    newJob(tenant, { dispatchId: entry }),
    newJob(tenant, { dispatchId: entry }),
  ]);
  return entry;
}

describe("DispatchStore.takeOff", () => {
  it("takes each ended job off its entry's count, and deletes and returns an entry left with none", async () => {
    const tenant = await createTenant(database());
    const entry = await entryOfThree(tenant);
    expect(await takeOff([entry, null])).toEqual([]);
    expect(await dispatchRow(database(), entry)).toMatchObject({ jobs: 2 });
    expect(await takeOff([entry, entry])).toEqual([{ id: entry, model: "iris", version: "1", waiting: true }]);
    expect(await dispatchRow(database(), entry)).toBeUndefined();
    // A job whose entry is gone already changes nothing.
    expect(await takeOff([entry])).toEqual([]);
  });

  it("says an emptied entry a worker had taken is not waiting (its queue entry is the worker's)", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await jobs().insertMany([job]);
    await jobs().claim([job.id], job.dispatchId!);
    expect(await takeOff([job.dispatchId])).toEqual([
      { id: job.dispatchId, model: "iris", version: "1", waiting: false },
    ]);
  });

  it("leaves a batch chunk's entry alone (its items come off it through BatchChunkStore)", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    expect(await takeOff([batch.chunkIds[0]!])).toEqual([]);
    expect(await dispatchRow(database(), batch.chunkIds[0]!)).toMatchObject({ jobs: 2 });
  });

  it("counts every job once when transactions take jobs off the same entries at once, and deletes each entry once", async () => {
    const tenant = await createTenant(database());
    const [a, b] = [await entryOfThree(tenant), await entryOfThree(tenant)];
    // Opposite orders: the rows are locked in id order, so the transactions never deadlock.
    const results = await Promise.all([takeOff([a, b, a]), takeOff([b, a, b]), takeOff([a]), takeOff([b])]);
    expect(results.flat().sort((x, y) => x.id.localeCompare(y.id))).toEqual(
      [a, b].sort().map((id) => ({ id, model: "iris", version: "1", waiting: true })),
    );
    expect(await dispatchRow(database(), a)).toBeUndefined();
    expect(await dispatchRow(database(), b)).toBeUndefined();
  });
});
