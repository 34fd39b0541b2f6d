import { describe, expect, it } from "vitest";
import { inferQueueName, parseInferQueueName } from "@inferline/queue";

describe("inferQueueName", () => {
  it("names one queue per model version, which BullMQ accepts and parseInferQueueName reads back", () => {
    expect(inferQueueName("iris", "1")).toBe("infer-iris@1");
    for (const version of ["1", "2024-01:rc@2", "ü {x}"]) {
      const name = inferQueueName("ocr-text-line", version);
      expect(name).not.toContain(":");
      expect(parseInferQueueName(name)).toEqual({ model: "ocr-text-line", version });
    }
  });
});
