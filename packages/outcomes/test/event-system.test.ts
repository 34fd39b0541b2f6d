import { describe, expect, it } from "vitest";
import type { RecordedEvent } from "@inferline/db";
import { EventSystem } from "../src/event-system.ts";
import { webhookEventId } from "../src/outcome-events.ts";
import {
  createBatch,
  createTenant,
  eventTypes,
  HOOK,
  insertJobs,
  newJob,
  recorded,
  useOutcomeResources,
  type Recorded,
} from "./support.ts";

const { db, resources } = useOutcomeResources();

function events(seen: Recorded = recorded()) {
  return { seen, system: new EventSystem(resources(seen), { ended: (work) => void seen.ended.push(...work) }) };
}

const event = (id: string): RecordedEvent => ({ id, tenantId: "t", type: "job.succeeded" });

describe("EventSystem.afterCommit", () => {
  it("reports what ended, removes emptied waiting entries, enqueues released followers, wakes waiters and enqueues deliveries", async () => {
    const { seen, system } = events();
    await system.afterCommit({
      channels: ["j1", "j2"],
      events: [event("msg_1")],
      ended: [
        { kind: "job", model: "iris", status: "canceled", count: 2 },
        { kind: "item", model: "iris", status: "canceled", count: 0 },
      ],
      emptied: [
        { id: "w", model: "iris", version: "1", waiting: true },
        { id: "taken", model: "iris", version: "1", waiting: false },
      ],
      released: [{ dispatchId: "e1", tenantId: "t", model: "iris", version: "1", priority: "normal", jobIds: ["f1"] }],
    });
    expect(seen.ended).toEqual([{ kind: "job", model: "iris", status: "canceled", count: 2 }]);
    expect(seen.removed.map((e) => e.id)).toEqual(["w"]);
    expect(seen.enqueued).toEqual([
      { dispatchId: "e1", tenantId: "t", model: "iris", version: "1", priority: "normal", jobIds: ["f1"] },
    ]);
    expect(seen.published).toEqual(["j1", "j2"]);
    expect(seen.delivered.map((e) => e.id)).toEqual(["msg_1"]);
  });

  it("logs, never throws, when Redis refuses the notification, the deliveries or the queue entries (the outcome is committed)", async () => {
    const seen = recorded();
    const refused = async () => Promise.reject(new Error("redis down"));
    const system = new EventSystem({
      ...resources(seen),
      notifier: { publish: refused },
      deliveries: { enqueue: refused },
      entries: { enqueue: refused, remove: refused },
    });
    await system.afterCommit({
      channels: ["j1"],
      events: [event("msg_1")],
      emptied: [{ id: "w", model: "iris", version: "1", waiting: true }],
      released: [{ dispatchId: "e1", tenantId: "t", model: "iris", version: "1", priority: "normal", jobIds: ["f1"] }],
    });
    expect(seen.warnings).toEqual([
      "removing emptied queue entries failed; a worker skips them",
      "enqueueing released followers failed; the reconciler will",
      "finished notification failed; long-polls look again on their own",
      "webhook enqueue failed; the sweep will retry",
    ]);
  });

  it("publishes nothing and enqueues nothing for a commit with no channel and no event", async () => {
    const { seen, system } = events();
    await system.afterCommit({ channels: [], events: [] });
    expect(seen).toEqual(recorded());
  });
});

describe("EventSystem's recorded events", () => {
  it("records job.<status> for jobs whose webhook wants it, none for jobs without one or whose spec leaves it out", async () => {
    const tenant = await createTenant(db());
    const [hooked, plain, picky] = await insertJobs(db(), [
      newJob(tenant, { webhook: HOOK }),
      newJob(tenant),
      newJob(tenant, { webhook: { ...HOOK, events: ["job.failed"] } }),
    ]);
    const { system } = events();
    const finished = [hooked!, plain!, picky!].map((j) => ({
      id: j.id,
      tenantId: tenant,
      status: "succeeded" as const,
      webhook: j.webhook,
      model: "iris",
    }));
    const recordedEvents = await system.jobEvents(finished);
    expect(recordedEvents).toEqual([
      { id: webhookEventId(hooked!.id, "job.succeeded"), tenantId: tenant, type: "job.succeeded" },
    ]);
    expect([
      await eventTypes(db(), hooked!.id),
      await eventTypes(db(), plain!.id),
      await eventTypes(db(), picky!.id),
    ]).toEqual([["job.succeeded"], [], []]);
    // Recording the same outcome again (a retried statement) adds no second event.
    expect(await system.jobEvents(finished)).toEqual([]);
  });

  it("records batch.completed only for a settlement that completed its batch", async () => {
    const tenant = await createTenant(db());
    const { batchId } = await createBatch(db(), tenant, [1], { webhook: HOOK });
    const { system } = events();
    expect(await system.batchCompleted({ batchId, tenantId: tenant, completed: false }, db().pool)).toEqual([]);
    expect(await system.batchCompleted(null, db().pool)).toEqual([]);
    const [completed] = await system.batchCompleted({ batchId, tenantId: tenant, completed: true }, db().pool);
    expect(completed).toEqual({
      id: webhookEventId(batchId, "batch.completed"),
      type: "batch.completed",
      tenantId: tenant,
    });
    expect(await eventTypes(db(), batchId)).toEqual(["batch.completed"]);
  });
});
