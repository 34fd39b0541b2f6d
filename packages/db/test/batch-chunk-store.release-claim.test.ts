import { describe, expect, it } from "vitest";
import { BatchChunkStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { chunkRow, createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();
const chunks = () => new BatchChunkStore(database().pool);

async function entryStarted(id: string): Promise<boolean> {
  const { rows } = await database().pool.query<{ started: boolean }>(
    `select "startedAt" is not null as started from dispatches where id = $1`,
    [id],
  );
  return rows[0]!.started;
}

describe("BatchChunkStore.releaseClaim", () => {
  it("takes back a first claim's attempt and start, so the chunk and its entry are not started again", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    const id = batch.chunkIds[0]!;
    await chunks().claim(id);
    await chunks().releaseClaim(id);
    expect(await chunkRow(database(), id)).toMatchObject({
      attempts: 0,
      startedAt: null,
      statuses: ["queued", "queued"],
    });
    expect(await entryStarted(id)).toBe(false);
    expect(await chunks().claim(id)).toMatchObject({ attempts: 1 });
  });

  it("takes back a later claim's attempt and keeps the chunk started (its earlier run may have written items)", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2] });
    const id = batch.chunkIds[0]!;
    await chunks().claim(id);
    await chunks().claim(id);
    await chunks().releaseClaim(id);
    const row = await chunkRow(database(), id);
    expect(row).toMatchObject({ attempts: 1 });
    expect(row?.startedAt).toBeInstanceOf(Date);
    expect(await entryStarted(id)).toBe(true);
  });
});
