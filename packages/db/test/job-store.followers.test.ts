import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { inTransaction, JobStore, type FlightLeader, type NewJob } from "@inferline/db";
import { sleepUntil } from "@inferline/testing";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

const database = useTestDatabase({ poolSize: 6 });
const store = () => new JobStore(database().pool, database().prisma);
const RESULT = '{"model_name":"iris","outputs":[]}';

/** A leader (a job that runs, with a digest) and identical jobs that would follow it. */
async function flight(
  followers = 2,
): Promise<{ tenant: string; leader: NewJob & { cacheKey: string }; ref: FlightLeader; followers: NewJob[] }> {
  const tenant = await createTenant(database());
  const cacheKey = crypto.randomUUID();
  const leader = { ...newJob(tenant, { cacheKey }), cacheKey };
  await store().insertMany([leader]);
  return {
    tenant,
    leader,
    ref: { id: leader.id, tenantId: tenant, cacheKey },
    followers: Array.from({ length: followers }, () => newJob(tenant, { cacheKey, dispatchId: null })),
  };
}

async function followerRow(id: string) {
  const { rows } = await database().pool.query<{
    status: string;
    cached: boolean;
    cacheLeader: string | null;
    dispatchId: string | null;
    result: unknown;
    errorCode: string | null;
  }>(`select status, cached, "cacheLeader", "dispatchId", result, "errorCode" from jobs where id = $1`, [id]);
  return rows[0];
}

describe("JobStore.insertFollowers", () => {
  it("stores followers of a queued or running leader queued, waiting on it, with no dispatch row", async () => {
    const f = await flight();
    const result = await store().insertFollowers(f.ref, f.followers);
    expect(result.leaderStatus).toBe("queued");
    expect(result.inserted.map((i) => [i.id, i.status]).sort()).toEqual(
      f.followers.map((j) => [j.id, "queued"]).sort(),
    );
    for (const j of f.followers)
      expect(await followerRow(j.id)).toMatchObject({
        status: "queued",
        cached: false,
        cacheLeader: f.leader.id,
        dispatchId: null,
      });

    await store().claim([f.leader.id]);
    const more = newJob(f.tenant, { cacheKey: f.ref.cacheKey });
    expect((await store().insertFollowers(f.ref, [more])).leaderStatus).toBe("running");
    expect(await followerRow(more.id)).toMatchObject({ status: "queued", cacheLeader: f.leader.id });
  });

  it("answers followers of a succeeded leader from its stored result, cached", async () => {
    const f = await flight(1);
    await store().finish([{ id: f.leader.id, status: "succeeded", resultJson: RESULT }]);
    const { leaderStatus, inserted } = await store().insertFollowers(f.ref, f.followers);
    expect(leaderStatus).toBe("succeeded");
    expect(inserted).toEqual([
      expect.objectContaining({ id: f.followers[0]!.id, status: "succeeded", result: JSON.parse(RESULT) }),
    ]);
    expect(await followerRow(f.followers[0]!.id)).toMatchObject({
      status: "succeeded",
      cached: true,
      cacheLeader: null,
      result: JSON.parse(RESULT),
    });
  });

  it("inserts nothing when the leader failed, ended, is another tenant's, has another digest, or does not exist", async () => {
    const failed = await flight(1);
    await store().finish([{ id: failed.leader.id, status: "failed", errorCode: "e", errorMessage: "m" }]);
    expect(await store().insertFollowers(failed.ref, failed.followers)).toEqual({
      leaderStatus: "failed",
      inserted: [],
    });

    const canceled = await flight(1);
    await store().cancel(canceled.tenant, canceled.leader.id);
    expect(await store().insertFollowers(canceled.ref, canceled.followers)).toEqual({
      leaderStatus: "canceled",
      inserted: [],
    });

    const other = await flight(1);
    const stranger = await createTenant(database());
    expect(
      await store().insertFollowers({ ...other.ref, tenantId: stranger }, [
        newJob(stranger, { cacheKey: other.ref.cacheKey }),
      ]),
    ).toEqual({ leaderStatus: null, inserted: [] });
    expect(await store().insertFollowers({ ...other.ref, cacheKey: "another" }, other.followers)).toEqual({
      leaderStatus: null,
      inserted: [],
    });
    expect(await store().insertFollowers({ ...other.ref, id: crypto.randomUUID() }, other.followers)).toEqual({
      leaderStatus: null,
      inserted: [],
    });
    for (const j of [...failed.followers, ...canceled.followers, ...other.followers])
      expect(await jobRow(database(), j.id)).toBeUndefined();
  });

  it("waits for a result write in progress on the leader's row and then sees its outcome, so no follower is left behind", async () => {
    const f = await flight(1);
    let inserting: Promise<unknown> | undefined;
    await inTransaction(database().pool, async (client) => {
      await store().finish([{ id: f.leader.id, status: "succeeded", resultJson: RESULT }], [], client);
      // The leader's row is locked by this uncommitted write: the insert blocks on its share lock.
      inserting = store().insertFollowers(f.ref, f.followers);
      await waitForLockWait();
      // A later statement of the write finds no follower yet (the insert waits for this commit).
      expect(await store().finishFollowers([f.leader.id], client)).toEqual([]);
    });
    expect(await inserting).toMatchObject({ leaderStatus: "succeeded", inserted: [{ status: "succeeded" }] });
  });
});

describe("JobStore.finishFollowers", () => {
  it("ends the followers of succeeded leaders with the result (cached) and of failed ones with the error, and returns them", async () => {
    const [ok, bad] = [await flight(2), await flight(1)];
    await store().insertFollowers(ok.ref, ok.followers);
    await store().insertFollowers(bad.ref, bad.followers);
    await store().finish([
      { id: ok.leader.id, status: "succeeded", resultJson: RESULT },
      { id: bad.leader.id, status: "failed", errorCode: "inference_error", errorMessage: "index out of range" },
    ]);

    const finished = await store().finishFollowers([ok.leader.id, bad.leader.id]);
    expect(finished.map((j) => [j.id, j.status]).sort()).toEqual(
      [...ok.followers.map((j) => [j.id, "succeeded"]), [bad.followers[0]!.id, "failed"]].sort(),
    );
    for (const j of ok.followers)
      expect(await followerRow(j.id)).toMatchObject({
        status: "succeeded",
        cached: true,
        cacheLeader: null,
        result: JSON.parse(RESULT),
      });
    expect(await jobRow(database(), bad.followers[0]!.id)).toMatchObject({
      status: "failed",
      errorCode: "inference_error",
      errorMessage: "index out of range",
    });
    expect(await followerRow(bad.followers[0]!.id)).toMatchObject({ cached: false, cacheLeader: null });
    // Once: a second call finds nothing.
    expect(await store().finishFollowers([ok.leader.id, bad.leader.id])).toEqual([]);
  });

  it("leaves followers of a leader still running, and a follower canceled on its own", async () => {
    const f = await flight(2);
    await store().insertFollowers(f.ref, f.followers);
    expect(await store().finishFollowers([f.leader.id])).toEqual([]);
    await store().cancel(f.tenant, f.followers[0]!.id);
    await store().finish([{ id: f.leader.id, status: "succeeded", resultJson: RESULT }]);
    expect((await store().finishFollowers([f.leader.id])).map((j) => j.id)).toEqual([f.followers[1]!.id]);
    expect((await jobRow(database(), f.followers[0]!.id))?.status).toBe("canceled");
  });
});

describe("JobStore.releaseFollowers", () => {
  it("moves the followers of an ended leader onto queue entries of their own, with dispatch rows, and returns the entries", async () => {
    const f = await flight(3);
    await store().insertFollowers(f.ref, f.followers);
    await store().cancel(f.tenant, f.leader.id);

    const released = await store().releaseFollowers([f.leader.id], 2);
    expect(released.map((r) => r.jobIds.length).sort()).toEqual([1, 2]);
    expect(released.flatMap((r) => r.jobIds).sort()).toEqual(f.followers.map((j) => j.id).sort());
    for (const entry of released) {
      expect(entry).toMatchObject({ tenantId: f.tenant, model: "iris", version: "1", priority: "normal" });
      expect(await dispatchRow(database(), entry.dispatchId)).toMatchObject({
        jobs: entry.jobIds.length,
        jobIds: entry.jobIds,
        batchChunk: false,
      });
      for (const id of entry.jobIds)
        expect(await followerRow(id)).toMatchObject({
          status: "queued",
          cacheLeader: null,
          dispatchId: entry.dispatchId,
        });
    }
    expect(await store().releaseFollowers([f.leader.id])).toEqual([]);
  });
});

/** Until another session of this database waits on a row lock (the insert blocked on the leader's row). */
function waitForLockWait(): Promise<unknown> {
  return sleepUntil(
    async () => {
      const { rows } = await database().pool.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0]!.n > 0;
    },
    { message: "no session waited on a lock" },
  );
}
