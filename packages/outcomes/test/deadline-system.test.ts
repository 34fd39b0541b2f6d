import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { CancelSystem } from "../src/cancel-system.ts";
import { DeadlineSystem } from "../src/deadline-system.ts";
import { EventSystem } from "../src/event-system.ts";
import {
  batchRow,
  chunkStatuses,
  createBatch,
  createTenant,
  eventTypes,
  HOOK,
  insertJobs,
  jobRow,
  newJob,
  recorded,
  useOutcomeResources,
} from "./support.ts";

const { db, resources } = useOutcomeResources();

function deadlines() {
  const seen = recorded();
  const r = resources(seen);
  const events = new EventSystem(r, { ended: (work) => void seen.ended.push(...work) });
  return { seen, system: new DeadlineSystem(r, events, new CancelSystem(r, events)) };
}

const past = () => new Date(Date.now() - 1000);
const future = () => new Date(Date.now() + 3_600_000);

describe("DeadlineSystem.claimJobs", () => {
  it("claims the jobs still in time and ends, with their events, those past their queue deadline or Cancel-After", async () => {
    const tenant = await createTenant(db());
    const entry = crypto.randomUUID();
    const [fresh, late, overdue] = await insertJobs(db(), [
      newJob(tenant, { dispatchId: entry, queueDeadline: future() }),
      newJob(tenant, { dispatchId: entry, queueDeadline: past(), webhook: HOOK }),
      newJob(tenant, { dispatchId: entry, cancelAt: past(), webhook: HOOK }),
    ]);
    const { seen, system } = deadlines();

    const claimed = await system.claimJobs([fresh!.id, late!.id, overdue!.id], entry);
    expect(claimed.map((j) => j.id)).toEqual([fresh!.id]);
    expect(await jobRow(db(), fresh!.id)).toMatchObject({ status: "running" });
    expect(await jobRow(db(), late!.id)).toMatchObject({ status: "expired" });
    expect(await jobRow(db(), overdue!.id)).toMatchObject({ status: "canceled" });
    expect([...(await eventTypes(db(), late!.id)), ...(await eventTypes(db(), overdue!.id))]).toEqual([
      "job.expired",
      "job.canceled",
    ]);
    expect(seen.published.sort()).toEqual([late!.id, overdue!.id].sort());
    expect(seen.ended.map((e) => [e.status, e.count]).sort()).toEqual([
      ["canceled", 1],
      ["expired", 1],
    ]);
  });
});

describe("DeadlineSystem.claimChunk", () => {
  it("claims a chunk in time, and expires the items of one whose batch passed its queue deadline instead of running them", async () => {
    const tenant = await createTenant(db());
    const inTime = await createBatch(db(), tenant, [2]);
    const late = await createBatch(db(), tenant, [2], { queueDeadline: past(), webhook: HOOK });
    const { seen, system } = deadlines();

    expect((await system.claimChunk(inTime.chunkIds[0]!))?.id).toBe(inTime.chunkIds[0]);
    expect(await system.claimChunk(late.chunkIds[0]!)).toBeNull();
    expect(await chunkStatuses(db(), late.chunkIds[0]!)).toEqual(["expired", "expired"]);
    expect(await batchRow(db(), late.batchId)).toMatchObject({ remaining: 0, completed: true });
    expect(seen.delivered.map((e) => e.type)).toEqual(["batch.completed"]);
    expect(seen.ended).toEqual([{ kind: "item", model: "iris", status: "expired", count: 2 }]);
  });

  it("cancels the batch of a chunk whose batch passed its Cancel-After", async () => {
    const tenant = await createTenant(db());
    const { batchId, chunkIds } = await createBatch(db(), tenant, [1], { cancelAt: past() });
    const { system } = deadlines();
    expect(await system.claimChunk(chunkIds[0]!)).toBeNull();
    expect(await batchRow(db(), batchId)).toEqual({ remaining: 0, completed: true, canceled: true });
  });
});

describe("DeadlineSystem's sweep pages", () => {
  it("expires and cancels overdue jobs a page at a time, and leaves jobs in time alone", async () => {
    const tenant = await createTenant(db());
    const late = await insertJobs(db(), [
      newJob(tenant, { queueDeadline: past() }),
      newJob(tenant, { queueDeadline: past() }),
      newJob(tenant, { queueDeadline: past() }),
    ]);
    const [overdue, waiting] = await insertJobs(db(), [
      newJob(tenant, { cancelAt: past() }),
      newJob(tenant, { queueDeadline: future(), cancelAt: future() }),
    ]);
    const { system } = deadlines();

    expect(await system.expireOverdueJobs(2)).toEqual({ due: 2, ended: 2 });
    expect(await system.expireOverdueJobs(2)).toEqual({ due: 1, ended: 1 });
    expect(await system.expireOverdueJobs(2)).toEqual({ due: 0, ended: 0 });
    expect(await system.cancelOverdueJobs(10)).toEqual({ due: 1, ended: 1 });
    for (const j of late) expect(await jobRow(db(), j.id)).toMatchObject({ status: "expired" });
    expect(await jobRow(db(), overdue!.id)).toMatchObject({ status: "canceled" });
    expect(await jobRow(db(), waiting!.id)).toMatchObject({ status: "queued" });
  });

  it("expires overdue batch items and cancels batches past Cancel-After", async () => {
    const tenant = await createTenant(db());
    const late = await createBatch(db(), tenant, [2, 1], { queueDeadline: past() });
    const canceled = await createBatch(db(), tenant, [1], { cancelAt: past() });
    const { system } = deadlines();

    expect(await system.expireOverdueItems(10)).toEqual({ due: 2, ended: 3 });
    expect(await batchRow(db(), late.batchId)).toMatchObject({ remaining: 0, completed: true, canceled: false });
    expect(await system.cancelOverdueBatches(10)).toEqual({ due: 1, ended: 1 });
    expect(await batchRow(db(), canceled.batchId)).toEqual({ remaining: 0, completed: true, canceled: true });
  });
});
