import { describe, expect, it } from "vitest";
import { batchItemId } from "@inferline/contracts";
import { JobStore } from "@inferline/db";
import { CancelSystem } from "../src/cancel-system.ts";
import { EventSystem } from "../src/event-system.ts";
import {
  batchRow,
  chunkStatuses,
  createBatch,
  createTenant,
  dispatchExists,
  eventTypes,
  HOOK,
  insertJobs,
  jobRow,
  newJob,
  recorded,
  useOutcomeResources,
} from "./support.ts";

const { db, resources } = useOutcomeResources();

function cancels() {
  const seen = recorded();
  const r = resources(seen);
  return { seen, system: new CancelSystem(r, new EventSystem(r, { ended: (work) => void seen.ended.push(...work) })) };
}

describe("CancelSystem.cancelJob", () => {
  it("cancels a queued job with its event, takes it off its entry (removing the waiting entry) and wakes its waiters", async () => {
    const tenant = await createTenant(db());
    const [job] = await insertJobs(db(), [newJob(tenant, { webhook: HOOK })]);
    const { seen, system } = cancels();

    expect(await system.cancelJob(tenant, job!.id)).toBe(true);
    expect(await jobRow(db(), job!.id)).toMatchObject({ status: "canceled" });
    expect(await eventTypes(db(), job!.id)).toEqual(["job.canceled"]);
    expect(await dispatchExists(db(), job!.dispatchId)).toBe(false);
    expect(seen.removed.map((e) => e.id)).toEqual([job!.dispatchId]);
    expect(seen.published).toEqual([job!.id]);
    expect(seen.delivered.map((e) => e.type)).toEqual(["job.canceled"]);
    expect(seen.ended).toEqual([{ kind: "job", model: "iris", status: "canceled", count: 1 }]);
  });

  it("cancels a running job too, whose entry a worker holds (nothing to remove from the queue)", async () => {
    const tenant = await createTenant(db());
    const [job] = await insertJobs(db(), [newJob(tenant)]);
    await new JobStore(db().pool, db().prisma).claim([job!.id], job!.dispatchId);
    const { seen, system } = cancels();
    expect(await system.cancelJob(tenant, job!.id)).toBe(true);
    expect(await jobRow(db(), job!.id)).toMatchObject({ status: "canceled" });
    expect(seen.removed).toEqual([]);
  });

  it("refuses another tenant's job, a terminal job and an id that is no uuid, changing nothing", async () => {
    const [tenant, other] = [await createTenant(db()), await createTenant(db())];
    const [job] = await insertJobs(db(), [newJob(tenant)]);
    const { seen, system } = cancels();
    expect(await system.cancelJob(other, job!.id)).toBe(false);
    expect(await system.cancelJob(tenant, "not-a-uuid")).toBe(false);
    expect(await jobRow(db(), job!.id)).toMatchObject({ status: "queued" });
    expect(await system.cancelJob(tenant, job!.id)).toBe(true);
    expect(await system.cancelJob(tenant, job!.id)).toBe(false);
    expect(seen.published).toEqual([job!.id]);
  });

  it("cancels a batch item through its chunk by the item's id, waking the batch's listeners", async () => {
    const tenant = await createTenant(db());
    const { batchId, chunkIds } = await createBatch(db(), tenant, [2]);
    const { seen, system } = cancels();
    expect(await system.cancelJob(tenant, batchItemId(batchId, 1))).toBe(true);
    expect(await chunkStatuses(db(), chunkIds[0]!)).toEqual(["queued", "canceled"]);
    expect(await batchRow(db(), batchId)).toMatchObject({ remaining: 1, completed: false });
    expect(seen.published).toEqual([batchId]);
  });
});

describe("CancelSystem.cancelBatch", () => {
  it("cancels every item not yet terminal and completes the batch with batch.completed, once", async () => {
    const tenant = await createTenant(db());
    const { batchId, chunkIds } = await createBatch(db(), tenant, [2, 1], { webhook: HOOK });
    const { seen, system } = cancels();

    expect(await system.cancelBatch(batchId)).toBe(true);
    expect(await chunkStatuses(db(), chunkIds[0]!)).toEqual(["canceled", "canceled"]);
    expect(await batchRow(db(), batchId)).toEqual({ remaining: 0, completed: true, canceled: true });
    expect(seen.delivered.map((e) => e.type)).toEqual(["batch.completed"]);
    expect(seen.ended).toEqual([{ kind: "item", model: "iris", status: "canceled", count: 3 }]);
    expect(seen.removed.map((e) => e.id).sort()).toEqual([...chunkIds].sort());

    expect(await system.cancelBatch(batchId)).toBe(false);
    expect(seen.delivered).toHaveLength(1);
  });
});
