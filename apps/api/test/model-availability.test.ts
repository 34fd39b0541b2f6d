import { describe, expect, it } from "vitest";
import { summarizeReadiness, type ModelManifest, type WorkerModelReport } from "@inferline/contracts";
import { ModelAvailability } from "../src/services/model-availability.ts";

const repo = {
  names: () => ["a", "b"],
  manifest: (name: string) => ({ name, versions: [{ version: "1" }, { version: "2" }] }) as unknown as ModelManifest,
};
const report = (worker: string, model: string, versions: Array<[string, boolean]>): WorkerModelReport => ({
  worker,
  model,
  versions: versions.map(([version, ready]) =>
    ready ? { version, ready } : { version, ready, code: "warmup_failed" },
  ),
});

describe("summarizeReadiness", () => {
  it("is ready when any worker serves a version, failed when workers tried and none could, unknown when none reported", () => {
    const r = summarizeReadiness(
      ["1", "2", "3"],
      [
        report("w1", "a", [
          ["1", false],
          ["2", false],
        ]),
        report("w2", "a", [
          ["1", true],
          ["2", false],
        ]),
      ],
    );
    expect(r.versions).toEqual({
      "1": { state: "ready", readyWorkers: 1, failedWorkers: 1, codes: ["warmup_failed"] },
      "2": { state: "failed", readyWorkers: 0, failedWorkers: 2, codes: ["warmup_failed"] },
      "3": { state: "unknown", readyWorkers: 0, failedWorkers: 0 },
    });
    expect(r.state).toBe("ready");
    expect(summarizeReadiness(["1"], []).state).toBe("unknown");
    expect(summarizeReadiness(["1"], [report("w", "a", [["1", false]])]).state).toBe("failed");
  });
});

describe("ModelAvailability", () => {
  it("refuses only a version some worker failed and none serves", async () => {
    const availability = new ModelAvailability(
      async () =>
        new Map([
          [
            "a",
            [
              report("w1", "a", [
                ["1", false],
                ["2", true],
              ]),
            ],
          ],
        ]),
      repo,
    );
    await expect(availability.assertServable("a", "1")).rejects.toMatchObject({
      code: "model_unavailable",
      status: 503,
      retryAfterSeconds: 30,
    });
    await expect(availability.assertServable("a", "2")).resolves.toBeUndefined();
    await expect(availability.assertServable("b", "1")).resolves.toBeUndefined(); // nobody reported b
  });

  it("decides without waiting while its reading is fresh or Redis just failed, and asks for a reading otherwise", async () => {
    const failedA1 = new Map([["a", [report("w1", "a", [["1", false]])]]]);
    const availability = new ModelAvailability(async () => failedA1, repo, { maxAgeMs: 60_000 });
    expect(availability.servableNow("a", "1")).toBe(false); // nothing read yet: the caller awaits assertServable
    await availability.all();
    expect(() => availability.servableNow("a", "1")).toThrow(
      expect.objectContaining({ code: "model_unavailable", status: 503 }),
    );
    expect(availability.servableNow("b", "1")).toBe(true);

    const down = new ModelAvailability(
      async () => {
        throw new Error("down");
      },
      repo,
      { maxAgeMs: 60_000 },
    );
    await down.assertServable("a", "1");
    expect(down.servableNow("a", "1")).toBe(true); // admitted without waiting on Redis again
  });

  it("reads once per maxAgeMs, sharing a reading in flight", async () => {
    let reads = 0;
    const availability = new ModelAvailability(async () => (reads++, new Map()), repo, { maxAgeMs: 60_000 });
    await Promise.all([
      availability.assertServable("a", "1"),
      availability.assertServable("a", "1"),
      availability.all(),
    ]);
    await availability.assertServable("b", "1");
    expect(reads).toBe(1);
    await availability.all({ fresh: true });
    expect(reads).toBe(2);
  });

  it("admits when Redis fails, and does not wait on it again within maxAgeMs", async () => {
    let reads = 0;
    const failures: string[] = [];
    const availability = new ModelAvailability(
      async () => {
        reads++;
        throw new Error("down");
      },
      repo,
      { maxAgeMs: 60_000, onFailure: (err) => failures.push(err.message) },
    );
    await expect(availability.assertServable("a", "1")).resolves.toBeUndefined();
    await expect(availability.assertServable("a", "1")).resolves.toBeUndefined();
    expect(reads).toBe(1);
    expect(failures).toEqual(["down"]);
    await expect(availability.all({ fresh: true })).rejects.toThrow("down");
  });

  it("goes on with the previous reading when a new one is slower than submitWaitMs", async () => {
    let release: (() => void) | undefined;
    let slow = false;
    const failed = new Map([["a", [report("w1", "a", [["1", false]])]]]);
    const availability = new ModelAvailability(
      () => (slow ? new Promise((resolve) => (release = () => resolve(new Map()))) : Promise.resolve(failed)),
      repo,
      { maxAgeMs: 0, submitWaitMs: 20 },
    );
    await availability.all();
    slow = true;
    // The new reading hangs: the previous one (a failed) still decides.
    await expect(availability.assertServable("a", "1")).rejects.toMatchObject({ code: "model_unavailable" });
    release!();
    await expect.poll(async () => (await availability.all()).get("a")!.state).toBe("unknown");
  });
});
