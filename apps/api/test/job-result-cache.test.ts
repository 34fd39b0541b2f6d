import { describe, expect, it } from "vitest";
import type { CacheEntry } from "@inferline/cache";
import type { AnsweredJob, FlightLeader, NewJob } from "@inferline/db";
import type { JobStatus } from "@inferline/contracts";
import { JobResultCache, type CacheableJob, type JobWrites } from "../src/services/job-result-cache.ts";
import type { Followed } from "../src/services/submit-writer.ts";

// The submit path's decisions over in-memory fakes (no Redis, no PostgreSQL); result-cache.test.ts
// covers the same end to end.

const SPEC = { ttlSeconds: 60, maxEntryBytes: 1024 };
const RESULT = { model_name: "m", model_version: "1", outputs: [] };

let nextId = 0;
function job(cacheKey = "d"): CacheableJob {
  return {
    id: `job-${++nextId}`,
    tenantId: "t",
    model: "m",
    version: "1",
    priority: "normal",
    inputs: [],
    requestedOutputs: [],
    metadata: {},
    webhook: null,
    idempotencyKey: null,
    requestHash: null,
    dispatchId: null,
    queueDeadline: null,
    cancelAt: null,
    createdAt: new Date(),
    cacheKey,
  };
}

/** Redis as the cache sees it: entries, flights (SET NX GET, compare-and-delete) and every call. */
class FakeCache {
  entries = new Map<string, string>();
  flights = new Map<string, string>();
  landed: Array<{ digest: string; jobId: string }> = [];

  async getMany(digests: readonly string[]): Promise<Array<CacheEntry | null>> {
    return digests.map((d) =>
      this.entries.has(d) ? { resultJson: this.entries.get(d)!, storedAt: Date.now() } : null,
    );
  }

  async lead(digest: string, jobId: string): Promise<string | null> {
    const holder = this.flights.get(digest);
    if (holder) return holder;
    this.flights.set(digest, jobId);
    return null;
  }

  async land(flights: ReadonlyArray<{ digest: string; jobId: string }>): Promise<void> {
    for (const f of flights) {
      this.landed.push(f);
      if (this.flights.get(f.digest) === f.jobId) this.flights.delete(f.digest);
    }
  }
}

/** The writes, recorded; `leaders` says what PostgreSQL holds for each leader id (absent: null). */
class FakeWrites implements JobWrites {
  log: string[] = [];
  leaders = new Map<string, JobStatus>();
  runGate: Promise<void> | undefined;
  runFails = false;

  admit = async () => void this.log.push("admit");
  run = async (j: NewJob) => {
    this.log.push(`run ${j.id}`);
    await this.runGate;
    if (this.runFails) throw new Error("insert failed");
    this.leaders.set(j.id, "queued");
  };
  answer = async (j: AnsweredJob) => void this.log.push(`answer ${j.id} ${j.resultJson}`);
  follow = async (leader: FlightLeader, j: NewJob): Promise<Followed> => {
    this.log.push(`follow ${j.id} ${leader.id}`);
    const status = this.leaders.get(leader.id) ?? null;
    if (status === "queued" || status === "running")
      return {
        leaderStatus: status,
        inserted: { id: j.id, tenantId: j.tenantId, status: "queued", webhook: null, model: j.model, result: null },
      };
    if (status === "succeeded")
      return {
        leaderStatus: status,
        inserted: {
          id: j.id,
          tenantId: j.tenantId,
          status: "succeeded",
          webhook: null,
          model: j.model,
          result: RESULT,
        },
      };
    return { leaderStatus: status };
  };
}

function setup() {
  const cache = new FakeCache();
  const counted: string[] = [];
  const results = new JobResultCache(cache, { lookups: (model, outcome) => void counted.push(`${model}:${outcome}`) });
  return { cache, counted, results, writes: new FakeWrites() };
}

describe("JobResultCache.place", () => {
  it("answers a hit without the depth and quota checks, a flight or a run", async () => {
    const { cache, counted, results, writes } = setup();
    cache.entries.set("d", JSON.stringify(RESULT));
    const j = job();
    const placed = await results.place(j, SPEC, false, writes);
    expect(placed).toMatchObject({ kind: "answered", result: RESULT });
    expect(writes.log).toEqual([`answer ${j.id} ${JSON.stringify(RESULT)}`]);
    expect(cache.flights.size).toBe(0);
    expect(counted).toEqual(["m:hit"]);
  });

  it("treats an entry that is not a JSON object as a miss", async () => {
    const { cache, counted, results, writes } = setup();
    cache.entries.set("d", "not json");
    const j = job();
    expect(await results.place(j, SPEC, false, writes)).toEqual({ kind: "queued" });
    expect(writes.log).toEqual(["admit", `run ${j.id}`]);
    expect(counted).toEqual(["m:miss"]);
  });

  it("bypass: no lookup and no flight, the job runs", async () => {
    const { cache, counted, results, writes } = setup();
    cache.entries.set("d", JSON.stringify(RESULT));
    const j = job();
    expect(await results.place(j, SPEC, true, writes)).toEqual({ kind: "queued" });
    expect(writes.log).toEqual(["admit", `run ${j.id}`]);
    expect(cache.flights.size).toBe(0);
    expect(counted).toEqual(["m:bypass"]);
  });

  it("a miss leads the flight and runs; an identical job follows it", async () => {
    const { cache, counted, results, writes } = setup();
    const [a, b] = [job(), job()];
    await results.place(a, SPEC, false, writes);
    expect(cache.flights.get("d")).toBe(a.id);
    expect(await results.place(b, SPEC, false, writes)).toEqual({ kind: "queued" });
    expect(writes.log).toEqual(["admit", `run ${a.id}`, "admit", `follow ${b.id} ${a.id}`]);
    expect(counted).toEqual(["m:miss", "m:merged"]);
  });

  it("a follower of a leader that succeeded meanwhile is answered from its stored result", async () => {
    const { results, writes, counted } = setup();
    const [a, b] = [job(), job()];
    await results.place(a, SPEC, false, writes);
    writes.leaders.set(a.id, "succeeded");
    expect(await results.place(b, SPEC, false, writes)).toEqual({ kind: "answeredByLeader" });
    expect(counted).toEqual(["m:miss", "m:hit"]);
  });

  it("waits for the insert of a leader of this process before following it", async () => {
    const { results, writes } = setup();
    let release!: () => void;
    writes.runGate = new Promise((r) => (release = r));
    const [a, b] = [job(), job()];
    const leading = results.place(a, SPEC, false, writes);
    const following = results.place(b, SPEC, false, writes);
    await new Promise((r) => setImmediate(r));
    // The follower has claimed nothing of PostgreSQL yet: its leader's row is not stored.
    expect(writes.log.some((l) => l.startsWith(`follow ${b.id}`))).toBe(false);
    release();
    await Promise.all([leading, following]);
    expect(writes.log.at(-1)).toBe(`follow ${b.id} ${a.id}`);
  });

  it("ends the flight of a leader that failed or was canceled, and leads anew", async () => {
    const { cache, results, writes, counted } = setup();
    const [a, b] = [job(), job()];
    await results.place(a, SPEC, false, writes);
    writes.leaders.set(a.id, "canceled");
    expect(await results.place(b, SPEC, false, writes)).toEqual({ kind: "queued" });
    expect(cache.landed).toEqual([{ digest: "d", jobId: a.id }]);
    expect(cache.flights.get("d")).toBe(b.id);
    expect(writes.log.slice(-2)).toEqual([`follow ${b.id} ${a.id}`, `run ${b.id}`]);
    expect(counted).toEqual(["m:miss", "m:miss"]);
  });

  it("runs without the flight when its leader is unknown to PostgreSQL (and leaves that flight alone)", async () => {
    const { cache, results, writes } = setup();
    cache.flights.set("d", "elsewhere");
    const j = job();
    expect(await results.place(j, SPEC, false, writes)).toEqual({ kind: "queued" });
    expect(writes.log).toEqual(["admit", `follow ${j.id} elsewhere`, `run ${j.id}`]);
    expect(cache.landed).toEqual([]);
    expect(cache.flights.get("d")).toBe("elsewhere");
  });

  it("claims no flight after a lookup that ran into the command timeout: the job runs at once", async () => {
    const cache = new FakeCache();
    const writes = new FakeWrites();
    // A bound of 0 ms: every lookup counts as unanswered.
    const results = new JobResultCache(cache, { lookups: () => {} }, { commandTimeoutMs: 0 });
    const j = job();
    expect(await results.place(j, SPEC, false, writes)).toEqual({ kind: "queued" });
    expect(writes.log).toEqual(["admit", `run ${j.id}`]);
    expect(cache.flights.size).toBe(0);
  });

  it("frees its flight when the leader's own insert fails", async () => {
    const { cache, results, writes } = setup();
    writes.runFails = true;
    await expect(results.place(job(), SPEC, false, writes)).rejects.toThrow("insert failed");
    expect(cache.flights.size).toBe(0);
  });
});
