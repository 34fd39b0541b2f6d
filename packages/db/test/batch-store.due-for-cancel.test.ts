import { describe, expect, it } from "vitest";
import { BatchChunkStore, BatchStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";
import { fromNow, setBatchDeadlines } from "./support/deadlines.ts";

const database = useTestDatabase();
const store = () => new BatchStore(database().pool, database().prisma);
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };

describe("BatchStore.dueForCancel", () => {
  it("lists batches past their Cancel-After time and not completed, earliest first, up to the limit", async () => {
    const tenant = await createTenant(database());
    const [later, earlier, waiting, done] = [
      await createBatch(database(), tenant),
      await createBatch(database(), tenant),
      await createBatch(database(), tenant),
      await createBatch(database(), tenant, { sizes: [1] }),
    ];
    await setBatchDeadlines(database(), later.batchId, { cancelAt: fromNow(-1) });
    await setBatchDeadlines(database(), earlier.batchId, { cancelAt: fromNow(-2) });
    await setBatchDeadlines(database(), waiting.batchId, { cancelAt: fromNow(60) });
    await database().transaction((client) => chunks().finish(done.chunkIds[0]!, [ok], client));
    await setBatchDeadlines(database(), done.batchId, { cancelAt: fromNow(-3) });

    expect(await store().dueForCancel(10)).toEqual([earlier.batchId, later.batchId]);
    expect(await store().dueForCancel(1)).toEqual([earlier.batchId]);
    await database().transaction((client) => store().cancel(earlier.batchId, client));
    expect(await store().dueForCancel(10)).toEqual([later.batchId]);
  });
});
