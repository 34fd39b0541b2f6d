import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { DispatchStore, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant, newJob } from "./support/rows.ts";

const database = useTestDatabase();
const dispatches = () => new DispatchStore(database().pool);
const jobs = () => new JobStore(database().pool, database().prisma);
const uniqueModel = () => `model-${crypto.randomUUID()}`;

/** `n` jobs of one queue entry. */
function entry(tenant: string, n: number, model: string) {
  const dispatchId = crypto.randomUUID();
  return Array.from({ length: n }, () => newJob(tenant, { dispatchId, model }));
}

describe("DispatchStore.queues", () => {
  it("every model's queued jobs and batch items apart, its running work and its oldest waiting entry's age, in one read", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    const [m, other, drained] = [uniqueModel(), uniqueModel(), uniqueModel()];
    const [oldest, running] = [entry(a, 2, m), entry(a, 3, m)];
    await jobs().insertMany([...oldest, ...running, ...entry(b, 4, m), ...entry(a, 6, other)]);
    const batch = await createBatch(database(), b, { model: m, sizes: [5, 7] });
    await database().pool.query(
      `update dispatches set "startedAt" = now(), "createdAt" = now() - interval '120 seconds' where id = any($1::uuid[])`,
      [[running[0]!.dispatchId, batch.chunkIds[1]]],
    );
    await database().pool.query(`update dispatches set "createdAt" = now() - interval '90 seconds' where id = $1`, [
      oldest[0]!.dispatchId,
    ]);

    const lines = (await dispatches().queues()).filter((l) => [m, other, drained].includes(l.model));
    const mine = lines.find((l) => l.model === m)!;
    expect(mine).toMatchObject({ queuedJobs: 2 + 4, queuedItems: 5, running: 3 + 7 });
    // The started entries are older, but only entries not started count for the wait.
    expect(mine.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(mine.oldestQueuedAgeSeconds).toBeLessThan(120);
    expect(lines.find((l) => l.model === other)).toMatchObject({ queuedJobs: 6, queuedItems: 0, running: 0 });
    expect(lines.some((l) => l.model === drained)).toBe(false);

    // Only started work left: the model still has a line, with no wait.
    await database().pool.query(`delete from dispatches where model = $1 and "startedAt" is null`, [m]);
    expect((await dispatches().queues()).find((l) => l.model === m)).toEqual({
      model: m,
      queuedJobs: 0,
      queuedItems: 0,
      running: 10,
      oldestQueuedAgeSeconds: null,
    });
  });
});
