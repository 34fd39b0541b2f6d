import { describe, expect, it } from "vitest";
import { batchItemId, MAX_BATCH_ITEMS, newBatchId, parseBatchItemId } from "../src/batch.ts";
import { isUuid } from "../src/job.ts";

describe("batch ids", () => {
  it("are UUIDs ending in five zero hex digits, random otherwise", () => {
    const ids = Array.from({ length: 100 }, newBatchId);
    for (const id of ids) {
      expect(isUuid(id), id).toBe(true);
      expect(id.endsWith("00000")).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("batchItemId and parseBatchItemId", () => {
  const batchId = "0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c400000";

  it("names item i by i + 1 in the last five hex digits", () => {
    expect(batchItemId(batchId, 0)).toBe("0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c400001");
    expect(batchItemId(batchId, 9)).toBe("0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c40000a");
    expect(batchItemId(batchId, MAX_BATCH_ITEMS - 1)).toBe("0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c4186a0");
    expect(batchItemId(batchId, 0xffffe)).toBe("0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c4fffff"); // the last index five digits hold
  });

  it("round-trips every index a batch may have, first, last and between", () => {
    for (const index of [0, 1, 15, 16, 511, 512, 4095, 65_535, MAX_BATCH_ITEMS - 1, 0xffffe]) {
      const id = batchItemId(batchId, index);
      expect(isUuid(id), id).toBe(true);
      expect(parseBatchItemId(id)).toEqual({ batchId, index });
    }
    const fresh = newBatchId();
    expect(parseBatchItemId(batchItemId(fresh, 41))).toEqual({ batchId: fresh, index: 41 });
  });

  it("reads the batch id itself as no item (index digits 00000)", () => {
    expect(parseBatchItemId(batchId)).toBeNull();
    expect(parseBatchItemId(newBatchId())).toBeNull();
  });

  it.each([
    "",
    "not-a-uuid",
    "0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c40000",
    "0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c4000011",
    "0f8c2d1e7a6b4c3d9e8f1a2b3c400001",
    "0f8c2d1e-7a6b-4c3d-9e8f-1a2b3c4zzzzz",
    "' or 1=1 --",
  ])("reads %j as no item", (id) => {
    expect(parseBatchItemId(id)).toBeNull();
  });
});
