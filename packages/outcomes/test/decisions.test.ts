import { describe, expect, it } from "vitest";
import type { FinishedJob, JobOutcome, ReleasedFollowers } from "@inferline/db";
import { flightsEnded, followUp, itemsExpired, jobsEnded, leadersToRelease } from "../src/decisions.ts";

const job = (id: string, status: FinishedJob["status"], extra: Partial<FinishedJob> = {}): FinishedJob => ({
  id,
  tenantId: "t",
  status,
  webhook: null,
  model: "iris",
  ...extra,
});
const failed = (id: string, errorCode: string): JobOutcome => ({ id, status: "failed", errorCode, errorMessage: "x" });
const ok = (id: string): JobOutcome => ({ id, status: "succeeded", resultJson: "{}" });

describe("flightsEnded", () => {
  it("lets followers share a leader's success and a failure its input caused", () => {
    const finished = [
      job("a", "succeeded", { cacheKey: "d1" }),
      job("b", "failed", { cacheKey: "d2" }),
      job("c", "failed", { cacheKey: "d3" }),
    ];
    const outcomes = [ok("a"), failed("b", "invalid_input"), failed("c", "inference_timeout")];
    expect(flightsEnded(finished, outcomes)).toEqual({ shared: ["a", "b", "c"], rerun: [] });
  });

  it("has followers run anew when their leader failed for a reason that is not its input's", () => {
    const finished = [job("a", "failed", { cacheKey: "d1" }), job("b", "failed", { cacheKey: "d2" })];
    expect(flightsEnded(finished, [failed("a", "retries_exhausted"), failed("b", "model_not_served")])).toEqual({
      shared: [],
      rerun: ["a", "b"],
    });
  });

  it("ignores jobs that lead no flight, and jobs the write did not finish", () => {
    expect(
      flightsEnded(
        [job("a", "succeeded"), job("b", "failed", { cacheKey: null })],
        [ok("a"), failed("b", "invalid_input"), ok("gone")],
      ),
    ).toEqual({ shared: [], rerun: [] });
  });

  it("keeps a leader that stayed canceled (the write did not change it) out of both lists", () => {
    expect(flightsEnded([job("a", "canceled", { cacheKey: "d1" })], [ok("a")])).toEqual({ shared: [], rerun: [] });
  });
});

describe("leadersToRelease", () => {
  it("names flight leaders that were canceled or expired, never those that ran or lead nothing", () => {
    const ended = [
      job("canceled", "canceled", { cacheKey: "d1" }),
      job("expired", "expired", { cacheKey: "d2" }),
      job("succeeded", "succeeded", { cacheKey: "d3" }),
      job("failed", "failed", { cacheKey: "d4" }),
      job("alone", "canceled"),
    ];
    expect(leadersToRelease(ended)).toEqual(["canceled", "expired"]);
  });
});

describe("jobsEnded", () => {
  it("counts jobs by model and status", () => {
    const ended = jobsEnded([
      job("a", "succeeded"),
      job("b", "succeeded"),
      job("c", "failed"),
      job("d", "succeeded", { model: "ocr" }),
    ]);
    expect(ended).toEqual([
      { kind: "job", model: "iris", status: "succeeded", count: 2 },
      { kind: "job", model: "iris", status: "failed", count: 1 },
      { kind: "job", model: "ocr", status: "succeeded", count: 1 },
    ]);
    expect(jobsEnded([])).toEqual([]);
  });
});

describe("itemsExpired", () => {
  it("counts expired batch items per model", () => {
    expect(
      itemsExpired({
        byModel: [
          { model: "iris", items: 3 },
          { model: "ocr", items: 1 },
        ],
      }),
    ).toEqual([
      { kind: "item", model: "iris", status: "expired", count: 3 },
      { kind: "item", model: "ocr", status: "expired", count: 1 },
    ]);
  });
});

describe("followUp", () => {
  it("reports only what ended something, removes only entries still waiting, and enqueues released followers as dispatch groups", () => {
    const released: ReleasedFollowers[] = [
      { dispatchId: "e1", tenantId: "t", model: "iris", version: "1", priority: "high", jobIds: ["f1", "f2"] },
    ];
    const next = followUp({
      ended: [
        { kind: "job", model: "iris", status: "canceled", count: 1 },
        { kind: "item", model: "iris", status: "canceled", count: 0 },
      ],
      emptied: [
        { id: "w", model: "iris", version: "1", waiting: true },
        { id: "taken", model: "iris", version: "1", waiting: false },
      ],
      released,
    });
    expect(next).toEqual({
      ended: [{ kind: "job", model: "iris", status: "canceled", count: 1 }],
      remove: [{ id: "w", model: "iris", version: "1", waiting: true }],
      enqueue: [
        { dispatchId: "e1", tenantId: "t", model: "iris", version: "1", priority: "high", jobIds: ["f1", "f2"] },
      ],
    });
  });

  it("leaves nothing to do for a commit that ended nothing", () => {
    expect(followUp({})).toEqual({ ended: [], remove: [], enqueue: [] });
  });
});
