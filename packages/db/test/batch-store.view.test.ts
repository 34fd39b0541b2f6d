import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { BatchChunkStore, BatchStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();
const store = () => new BatchStore(database().pool, database().prisma);
const chunks = () => new BatchChunkStore(database().pool);
const ok = { status: "succeeded" as const, resultJson: "{}" };
const bad = { status: "failed" as const, error: { code: "inference_error", message: "no" } };

/** The batch's view as the API shows it. */
async function view(tenantId: string, id: string) {
  return store().view((await store().get(tenantId, id))!);
}

describe("BatchStore.get", () => {
  it("returns the tenant's batch, and null for another tenant's or an unknown id", async () => {
    const [owner, other] = [await createTenant(database()), await createTenant(database())];
    const { batchId } = await createBatch(database(), owner);
    expect(await store().get(owner, batchId)).toMatchObject({ id: batchId, tenantId: owner, total: 3, remaining: 3 });
    expect(await store().get(other, batchId)).toBeNull();
    expect(await store().get(owner, crypto.randomUUID())).toBeNull();
  });
});

describe("BatchStore.view", () => {
  it("counts items by status over the chunks and moves from queued to running to completed", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [2, 3] });
    const [first, second] = batch.chunkIds as [string, string];
    expect(await view(tenant, batch.batchId)).toMatchObject({
      id: batch.batchId,
      status: "queued",
      model: "iris",
      version: "1",
      priority: "low",
      total: 5,
      counts: { queued: 5, running: 0, succeeded: 0, failed: 0, canceled: 0 },
    });

    await chunks().claim(first);
    expect(await view(tenant, batch.batchId)).toMatchObject({
      status: "running",
      counts: { queued: 3, running: 2, succeeded: 0, failed: 0, canceled: 0 },
    });

    await database().transaction((client) => chunks().finish(first, [ok, bad], client));
    await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 4, client));
    expect(await view(tenant, batch.batchId)).toMatchObject({
      status: "running",
      counts: { queued: 2, running: 0, succeeded: 1, failed: 1, canceled: 1 },
    });

    await chunks().claim(second);
    await database().transaction((client) => chunks().finish(second, [ok, ok, undefined], client));
    const done = await view(tenant, batch.batchId);
    expect(done).toMatchObject({
      status: "completed",
      counts: { queued: 0, running: 0, succeeded: 3, failed: 1, canceled: 1 },
    });
    expect(typeof done.completedAt).toBe("string");
    expect(done.canceledAt).toBeUndefined();
  });

  it("calls a batch whose only progress is items canceled one by one queued, and a canceled batch canceled", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [3] });
    await database().transaction((client) => chunks().cancelItem(tenant, batch.batchId, 0, client));
    expect(await view(tenant, batch.batchId)).toMatchObject({ status: "queued", counts: { queued: 2, canceled: 1 } });

    await database().transaction((client) => store().cancel(batch.batchId, client));
    const canceled = await view(tenant, batch.batchId);
    expect(canceled).toMatchObject({ status: "canceled", counts: { queued: 0, canceled: 3 } });
    expect(typeof canceled.canceledAt).toBe("string");
  });
});

describe("BatchStore.eventSubject", () => {
  it("returns the owner, the webhook and the view a batch.completed event carries; null for an unknown batch", async () => {
    const tenant = await createTenant(database());
    const webhook = { url: "https://example.com/hook", events: ["batch.completed" as const] };
    const batch = await createBatch(database(), tenant, { sizes: [1], webhook });
    const subject = await store().eventSubject(batch.batchId);
    expect(subject).toEqual({ tenantId: tenant, webhook, view: await view(tenant, batch.batchId) });
    expect(await store().eventSubject(crypto.randomUUID())).toBeNull();
  });

  it("reads inside the caller's transaction what it has written there", async () => {
    const tenant = await createTenant(database());
    const batch = await createBatch(database(), tenant, { sizes: [1] });
    await database()
      .transaction(async (client) => {
        await chunks().finish(batch.chunkIds[0]!, [ok], client);
        expect((await store().eventSubject(batch.batchId, client))?.view).toMatchObject({
          status: "completed",
          counts: { succeeded: 1 },
        });
        throw new Error("abandon");
      })
      .catch(() => {});
    expect((await store().eventSubject(batch.batchId))?.view.status).toBe("queued");
  });
});

describe("BatchStore idempotency keys", () => {
  it("finds the tenant's batch by its key, and releases the key for a new batch", async () => {
    const [owner, other] = [await createTenant(database()), await createTenant(database())];
    const old = await createBatch(database(), owner, { idempotencyKey: "run-1" });
    expect((await store().findByIdempotencyKey(owner, "run-1"))?.id).toBe(old.batchId);
    expect(await store().findByIdempotencyKey(other, "run-1")).toBeNull();

    await store().releaseIdempotencyKey(old.batchId);
    expect(await store().findByIdempotencyKey(owner, "run-1")).toBeNull();
    const reuse = await createBatch(database(), owner, { idempotencyKey: "run-1" });
    expect((await store().findByIdempotencyKey(owner, "run-1"))?.id).toBe(reuse.batchId);
    expect(await store().get(owner, old.batchId)).toMatchObject({ idempotencyKey: null });
  });
});
