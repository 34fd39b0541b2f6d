import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchStore, JobStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newBatch, newJob, tensor } from "./support/rows.ts";

const database = useTestDatabase();

describe("BatchDraft.commit: fair-share ranks", () => {
  it("ranks each chunk by its tenant's queued work of the model and priority before the batch plus the batch's earlier chunks", async () => {
    const [a, b] = [await createTenant(database()), await createTenant(database())];
    const model = `model-${crypto.randomUUID()}`;
    const dispatchId = crypto.randomUUID();
    // 6 of a's jobs queued at the batch's priority, 9 of b's (another tenant), 4 of a's at another priority.
    const jobs = [
      ...Array.from({ length: 6 }, () => newJob(a, { model, priority: "low", dispatchId })),
      ...Array.from({ length: 9 }, () => newJob(b, { model, priority: "low" })),
      ...Array.from({ length: 4 }, () => newJob(a, { model, priority: "normal" })),
    ];
    await new JobStore(database().pool, database().prisma).insertMany(jobs);

    const draft = await new BatchStore(database().pool, database().prisma).open({
      ...newBatch(a, { model }),
      priority: "low",
    });
    let firstIndex = 0;
    for (const size of [3, 5, 2]) {
      await draft.add({
        id: crypto.randomUUID(),
        firstIndex,
        inputs: Array.from({ length: size }, (_, i) => [tensor(i)]),
        customIds: Array<string | null>(size).fill(null),
      });
      firstIndex += size;
    }
    expect((await draft.commit(firstIndex, null)).ranks).toEqual([6, 9, 14]);
  });
});
