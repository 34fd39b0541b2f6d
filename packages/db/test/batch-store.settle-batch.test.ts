import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { settleBatch } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { batchRow, createBatch, createTenant } from "./support/rows.ts";

const database = useTestDatabase();

describe("settleBatch", () => {
  it("counts newly terminal items against the batch and completes it in the statement that reaches zero", async () => {
    const tenant = await createTenant(database());
    const { batchId } = await createBatch(database(), tenant, { sizes: [5] });
    expect(await settleBatch(database().pool, batchId, 2)).toEqual({ batchId, tenantId: tenant, completed: false });
    expect(await batchRow(database(), batchId)).toMatchObject({ remaining: 3, completedAt: null });
    expect(await settleBatch(database().pool, batchId, 3)).toEqual({ batchId, tenantId: tenant, completed: true });
    expect((await batchRow(database(), batchId))?.completedAt).toBeInstanceOf(Date);
  });

  it("completes the batch exactly once when settlements race", async () => {
    const tenant = await createTenant(database());
    const { batchId } = await createBatch(database(), tenant, { sizes: [20] });
    const settlements = await Promise.all(Array.from({ length: 20 }, () => settleBatch(database().pool, batchId, 1)));
    expect(settlements.filter((s) => s?.completed)).toHaveLength(1);
    expect(await batchRow(database(), batchId)).toMatchObject({ remaining: 0 });
  });

  it("writes nothing for no items, and returns null for an unknown batch", async () => {
    const tenant = await createTenant(database());
    const { batchId } = await createBatch(database(), tenant, { sizes: [1] });
    expect(await settleBatch(database().pool, batchId, 0)).toBeNull();
    expect(await batchRow(database(), batchId)).toMatchObject({ remaining: 1 });
    expect(await settleBatch(database().pool, crypto.randomUUID(), 1)).toBeNull();
  });
});
