import { describe, expect, it } from "vitest";
import { batchItemId, BatchResultLine, JobError, type InferenceResult } from "@inferline/contracts";
import type { ResultPage } from "@inferline/db";
import { batchResultLines } from "../src/services/batch-results.ts";

const BATCH = "3c9d6a52-0f1b-4a7e-8d2c-6b1e4f900000";
const RESULT: InferenceResult = {
  model_name: "iris",
  model_version: "1",
  outputs: [{ name: "y", datatype: "FP32", shape: [1], data: [0.5] }],
};
const ERROR: JobError = {
  code: "deadline_exceeded",
  message: "not started within its queue deadline of 60 s (maxQueueSeconds)",
};

/** One item of each kind a line can show: run and succeeded, answered from the cache, failed, still queued. */
const PAGE: ResultPage = {
  firstIndex: 4,
  size: 4,
  customIds: ["row-4", "row-5", null, "row-7"],
  statuses: ["succeeded", "succeeded", "expired", "queued"],
  cached: [false, true, false, false],
  results: [JSON.stringify(RESULT), JSON.stringify(RESULT), "null", null],
  errors: ["null", "null", JSON.stringify(ERROR), null],
};

async function* pagesOf(pages: ResultPage[]): AsyncGenerator<ResultPage> {
  yield* pages;
}

async function lines(pages: ResultPage[]): Promise<unknown[]> {
  let text = "";
  for await (const chunk of batchResultLines(BATCH, pagesOf(pages))) text += chunk;
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line));
}

describe("batchResultLines", () => {
  it("writes lines the BatchResultLine schema reads whole, every field of it on some line", async () => {
    const read = await lines([PAGE]);
    const parsed = read.map((line) => BatchResultLine.strict().parse(line));
    expect(parsed).toEqual(read);
    const fields = new Set(parsed.flatMap((line) => Object.keys(line)));
    expect([...fields].sort()).toEqual(Object.keys(BatchResultLine.shape).sort());
  });

  it("gives each item its index, customId, job id, status, and its own result or error", async () => {
    expect(await lines([PAGE])).toEqual([
      { index: 4, customId: "row-4", jobId: batchItemId(BATCH, 4), status: "succeeded", result: RESULT },
      { index: 5, customId: "row-5", jobId: batchItemId(BATCH, 5), status: "succeeded", result: RESULT, cached: true },
      { index: 6, customId: null, jobId: batchItemId(BATCH, 6), status: "expired", error: ERROR },
      { index: 7, customId: "row-7", jobId: batchItemId(BATCH, 7), status: "queued" },
    ]);
  });
});
