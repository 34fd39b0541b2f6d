import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobStore, type FinishedJob } from "@inferline/db";
import { CancelSystem } from "../src/cancel-system.ts";
import { EventSystem } from "../src/event-system.ts";
import { ResultSystem } from "../src/result-system.ts";
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

function results() {
  const seen = recorded();
  const finishedHook: FinishedJob[] = [];
  const r = resources(seen);
  const events = new EventSystem(r, { ended: (work) => void seen.ended.push(...work) });
  const system = new ResultSystem(r, events, { onFinished: async (jobs) => void finishedHook.push(...jobs) });
  return { seen, finishedHook, system, cancels: new CancelSystem(r, events) };
}

describe("ResultSystem.finishJobs", () => {
  it("writes a run's successes and failures with their entry and events in one commit, then wakes waiters and delivers", async () => {
    const tenant = await createTenant(db());
    const entry = crypto.randomUUID();
    const [good, bad] = await insertJobs(db(), [
      newJob(tenant, { dispatchId: entry, webhook: HOOK }),
      newJob(tenant, { dispatchId: entry }),
    ]);
    await new JobStore(db().pool, db().prisma).claim([good!.id, bad!.id], entry);
    const { seen, finishedHook, system } = results();

    const finished = await system.finishJobs(
      [
        { id: good!.id, status: "succeeded", resultJson: `{"outputs":[]}` },
        { id: bad!.id, status: "failed", errorCode: "invalid_input", errorMessage: "no" },
      ],
      entry,
    );

    expect(finished.map((f) => [f.id, f.status])).toEqual([
      [good!.id, "succeeded"],
      [bad!.id, "failed"],
    ]);
    expect(await jobRow(db(), good!.id)).toEqual({ status: "succeeded", result: { outputs: [] }, errorCode: null });
    expect(await jobRow(db(), bad!.id)).toMatchObject({ status: "failed", errorCode: "invalid_input" });
    // The entry's jobs all ended: its row goes with the write.
    expect(await dispatchExists(db(), entry)).toBe(false);
    expect(await eventTypes(db(), good!.id)).toEqual(["job.succeeded"]);
    expect(seen.delivered.map((e) => e.type)).toEqual(["job.succeeded"]);
    expect(seen.published.sort()).toEqual([good!.id, bad!.id].sort());
    expect(seen.ended.sort((a, b) => a.status.localeCompare(b.status))).toEqual([
      { kind: "job", model: "iris", status: "failed", count: 1 },
      { kind: "job", model: "iris", status: "succeeded", count: 1 },
    ]);
    expect(finishedHook.map((f) => f.id).sort()).toEqual([good!.id, bad!.id].sort());
  });

  it("leaves a job canceled during its run canceled: the late result is not written, reported or delivered", async () => {
    const tenant = await createTenant(db());
    const [job] = await insertJobs(db(), [newJob(tenant, { webhook: HOOK })]);
    await new JobStore(db().pool, db().prisma).claim([job!.id], job!.dispatchId);
    const { seen, system, cancels } = results();
    expect(await cancels.cancelJob(tenant, job!.id)).toBe(true);
    seen.delivered.length = 0;
    seen.ended.length = 0;

    expect(await system.finishJobs([{ id: job!.id, status: "succeeded", resultJson: "{}" }], job!.dispatchId)).toEqual(
      [],
    );
    expect(await jobRow(db(), job!.id)).toMatchObject({ status: "canceled", result: null });
    expect(await eventTypes(db(), job!.id)).toEqual(["job.canceled"]);
    expect(seen.delivered).toEqual([]);
    expect(seen.ended).toEqual([]);
  });

  it("writes standalone jobs (no webhook, no flight) without events", async () => {
    const tenant = await createTenant(db());
    const [job] = await insertJobs(db(), [newJob(tenant)]);
    await new JobStore(db().pool, db().prisma).claim([job!.id], job!.dispatchId);
    const { seen, system } = results();
    const finished = await system.finishJobs(
      [{ id: job!.id, status: "succeeded", resultJson: "{}" }],
      job!.dispatchId,
      { standalone: true },
    );
    expect(finished.map((f) => f.status)).toEqual(["succeeded"]);
    expect(await jobRow(db(), job!.id)).toMatchObject({ status: "succeeded" });
    expect(seen.published).toEqual([job!.id]);
    expect(seen.delivered).toEqual([]);
  });
});

describe("ResultSystem.finishUnclaimed", () => {
  it("writes a still-queued job's outcome and wakes its waiters; a job no longer queued is left to the claim path", async () => {
    const tenant = await createTenant(db());
    const [queued, canceled] = await insertJobs(db(), [newJob(tenant), newJob(tenant)]);
    const { seen, system, cancels } = results();
    await cancels.cancelJob(tenant, canceled!.id);
    seen.published.length = 0;

    expect(
      (
        await system.finishUnclaimed(
          { id: queued!.id, status: "succeeded", resultJson: "{}" },
          queued!.dispatchId,
          new Date(),
        )
      ).map((f) => f.id),
    ).toEqual([queued!.id]);
    expect(await jobRow(db(), queued!.id)).toMatchObject({ status: "succeeded" });
    expect(
      await system.finishUnclaimed(
        { id: canceled!.id, status: "succeeded", resultJson: "{}" },
        canceled!.dispatchId,
        new Date(),
      ),
    ).toEqual([]);
    expect(await jobRow(db(), canceled!.id)).toMatchObject({ status: "canceled" });
    expect(seen.published).toEqual([queued!.id]);
  });
});

describe("ResultSystem.finishChunk", () => {
  it("writes a chunk's items and, when that completes the batch, records and delivers batch.completed", async () => {
    const tenant = await createTenant(db());
    const { batchId, chunkIds } = await createBatch(db(), tenant, [2, 1], { webhook: HOOK });
    const { seen, system } = results();

    const first = await system.finishChunk(chunkIds[0]!, [
      { status: "succeeded", resultJson: "{}" },
      { status: "failed", error: { code: "invalid_input", message: "no" } },
    ]);
    expect(first).toMatchObject({ batchId, finished: 2, succeeded: 1, failed: 1 });
    expect(await chunkStatuses(db(), chunkIds[0]!)).toEqual(["succeeded", "failed"]);
    expect(await batchRow(db(), batchId)).toMatchObject({ remaining: 1, completed: false });
    expect(seen.delivered).toEqual([]);

    await system.finishChunk(chunkIds[1]!, [{ status: "succeeded", resultJson: "{}" }]);
    expect(await batchRow(db(), batchId)).toMatchObject({ remaining: 0, completed: true });
    expect(seen.delivered.map((e) => e.type)).toEqual(["batch.completed"]);
    // Long-polls on the batch and its items listen on the batch id: one message per chunk.
    expect(seen.published).toEqual([batchId, batchId]);
  });
});
