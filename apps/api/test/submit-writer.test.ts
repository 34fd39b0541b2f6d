import { afterEach, describe, expect, it, vi } from "vitest";
import pino from "pino";
import type { AnsweredJob, FlightLeader, FollowResult, NewJob } from "@inferline/db";
import { SubmitWriter } from "../src/services/submit-writer.ts";

// Unit tests of the grouping logic, over in-memory fakes; the PostgreSQL and Redis paths are
// covered end to end (jobs.test.ts, outages.test.ts, hostile-input.test.ts).
type Store = ConstructorParameters<typeof SubmitWriter>[0];
type Dispatcher = ConstructorParameters<typeof SubmitWriter>[1];
type Groups = Parameters<Dispatcher["enqueue"]>[0];

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending promise callback run (one macrotask turn; no wall-clock wait). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** Where a promise stands, read without awaiting it. */
function track(promise: Promise<unknown>): { state: "pending" | "resolved" | "rejected"; error?: unknown } {
  const t: { state: "pending" | "resolved" | "rejected"; error?: unknown } = { state: "pending" };
  promise.then(
    () => (t.state = "resolved"),
    (error: unknown) => Object.assign(t, { state: "rejected", error }),
  );
  return t;
}

const rowFault = (code: string) => Object.assign(new Error(`row fault ${code}`), { code });

/** insertMany records each call; `held` makes each call wait for release(); a guilty job fails its statement. */
class FakeStore implements Pick<Store, "insertMany" | "existing"> {
  inserts: string[][] = [];
  held = false;
  guilty = new Map<string, Error>();
  outage: Error | undefined;
  /** Ids whose insert commits although its statement then fails with `outage` (an answer lost on the way back). */
  committedDespiteOutage = new Set<string>();
  /** What existing() answers; undefined: it fails as the insert did. */
  stored = new Set<string>();
  private holds: Array<() => void> = [];

  async insertMany(jobs: NewJob[]): Promise<void> {
    this.inserts.push(jobs.map((j) => j.id));
    if (this.held) {
      const gate = deferred();
      this.holds.push(gate.resolve);
      await gate.promise;
    }
    if (this.outage) {
      for (const j of jobs) if (this.committedDespiteOutage.has(j.id)) this.stored.add(j.id);
      throw this.outage;
    }
    const fault = jobs.map((j) => this.guilty.get(j.id)).find(Boolean);
    if (fault) throw fault;
    for (const j of jobs) this.stored.add(j.id);
  }

  async existing(ids: string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.stored.has(id)));
  }

  release(): void {
    this.holds.shift()!();
  }
}

/** plan: one queue entry per (model, version, priority) call, ids d1, d2, …; enqueue records each call. */
class FakeDispatcher implements Pick<Dispatcher, "plan" | "enqueue"> {
  enqueued: Groups[] = [];
  failing = false;
  private next = 0;

  plan: Dispatcher["plan"] = (model, version, priority, rows) => {
    const dispatchId = `d${++this.next}`;
    for (const row of rows) row.dispatchId = dispatchId;
    return [{ dispatchId, model, version, priority, jobIds: rows.map((r) => r.id) }];
  };

  async enqueue(groups: Groups): Promise<void> {
    this.enqueued.push(groups);
    if (this.failing) throw new Error("redis refused");
  }
}

/** Ranks each entry by its tenant's jobs ranked before it (TenantBacklog without PostgreSQL). */
class FakeBacklog {
  private queued = new Map<string, number>();

  async rank(entries: Array<{ id: string; tenantId: string; jobs: number }>): Promise<number[]> {
    return entries.map((e) => {
      const ahead = this.queued.get(e.tenantId) ?? 0;
      this.queued.set(e.tenantId, ahead + e.jobs);
      return ahead;
    });
  }
}

// The writer uses only these members of each; the rest of the classes serve other callers.
const asStore = (fake: Pick<Store, "insertMany">) => fake as Store;
const asDispatcher = (fake: Pick<Dispatcher, "plan" | "enqueue">) => fake as Dispatcher;

function newJob(id: string, model = "iris", tenantId = "t"): NewJob {
  return {
    id,
    tenantId,
    model,
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
    createdAt: new Date(0),
  };
}

function setup() {
  const store = new FakeStore();
  const dispatcher = new FakeDispatcher();
  const warnings: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) });
  const writer = new SubmitWriter(asStore(store), asDispatcher(dispatcher), new FakeBacklog(), logger);
  return { store, dispatcher, writer, warnings };
}

const entries = (groups: Groups | undefined) => (groups ?? []).map((g) => ({ model: g.model, jobIds: g.jobIds }));

afterEach(() => {
  vi.useRealTimers();
});

describe("SubmitWriter", () => {
  it("inserts a lone submit at once, waiting for no timer, then enqueues it", async () => {
    vi.useFakeTimers();
    const { store, dispatcher, writer } = setup();
    const job = newJob("a");
    const submitted = writer.submit(job);
    expect(store.inserts).toEqual([["a"]]); // called before submit returned
    expect(vi.getTimerCount()).toBe(0);
    await submitted;
    // A lone job without webhook, deadline or flight carries what its claim would return (CarriedJob).
    const carried = { tenantId: "t", inputs: [], requestedOutputs: [], cacheKey: null, traceParent: null };
    expect(dispatcher.enqueued).toEqual([
      [
        {
          dispatchId: "d1",
          model: "iris",
          version: "1",
          priority: "normal",
          jobIds: ["a"],
          tenantId: "t",
          rank: 0,
          weight: 1,
          carried,
        },
      ],
    ]);
    expect(job.dispatchId).toBe("d1"); // stored with the entry that carries it, for the reconciler
  });

  it("carries the inputs only of a lone job small enough, with no webhook, no deadline and no single flight led", async () => {
    const { dispatcher, writer } = setup();
    const row = { name: "x", datatype: "FP32" as const, shape: [1, 4], data: [1, 2, 3, 4] };
    const jobs: NewJob[] = [
      { ...newJob("small"), inputs: [row] },
      { ...newJob("large"), inputs: [{ ...row, shape: [9, 4], data: Array.from({ length: 36 }, () => 1) }] }, // past 32 numbers
      { ...newJob("bytes"), inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: ["aGk="] }] },
      { ...newJob("hooked"), webhook: { url: "https://example.com/hook" } },
      { ...newJob("deadline"), queueDeadline: new Date(60_000) },
      { ...newJob("cancelAt"), cancelAt: new Date(60_000) },
      { ...newJob("leader"), leadsFlight: true },
    ];
    for (const job of jobs) await writer.submit(job);
    const carriedIds = dispatcher.enqueued
      .flat()
      .filter((g) => g.carried)
      .map((g) => g.jobIds[0]);
    expect(carriedIds).toEqual(["small"]);
  });

  it("groups submits that arrive during a write into the next write, with one enqueue per group", async () => {
    const { store, dispatcher, writer } = setup();
    store.held = true;
    const a = track(writer.submit(newJob("a")));
    const rest = ["b", "c"]
      .map((id) => track(writer.submit(newJob(id))))
      .concat(track(writer.submit(newJob("w", "wine"))));
    await flush();
    expect(store.inserts).toEqual([["a"]]);
    expect(a.state).toBe("pending"); // not before its row is stored

    store.release();
    await flush();
    expect(a.state).toBe("resolved");
    expect(store.inserts).toEqual([["a"], ["b", "c", "w"]]);
    expect(rest.map((t) => t.state)).toEqual(["pending", "pending", "pending"]);

    store.release();
    await flush();
    expect(rest.map((t) => t.state)).toEqual(["resolved", "resolved", "resolved"]);
    expect(dispatcher.enqueued).toHaveLength(2);
    expect(entries(dispatcher.enqueued[1])).toEqual([
      { model: "iris", jobIds: ["b", "c"] },
      { model: "wine", jobIds: ["w"] },
    ]);
  });

  it("plans one entry per tenant, ranked by the tenant's work ahead of it and carrying the tenant's weight", async () => {
    const { store, dispatcher, writer } = setup();
    store.held = true;
    const first = writer.submit(newJob("a1", "iris", "A"), 2);
    const rest = [
      writer.submit(newJob("a2", "iris", "A"), 2),
      writer.submit(newJob("b1", "iris", "B")),
      writer.submit(newJob("a3", "iris", "A"), 2),
    ];
    store.held = false;
    store.release();
    await Promise.all([first, ...rest]);
    expect(store.inserts).toEqual([["a1"], ["a2", "b1", "a3"]]);
    const second = dispatcher.enqueued[1]!.map((g) => ({ jobIds: g.jobIds, rank: g.rank, weight: g.weight }));
    expect(second).toEqual([
      { jobIds: ["a2", "a3"], rank: 1, weight: 2 },
      { jobIds: ["b1"], rank: 0, weight: 1 },
    ]);
  });

  it("resolves when the enqueue fails: the job is stored, and the reconciler enqueues it", async () => {
    const { store, dispatcher, writer, warnings } = setup();
    dispatcher.failing = true;
    await expect(writer.submit(newJob("a"))).resolves.toBeUndefined();
    expect(store.inserts).toEqual([["a"]]);
    expect(dispatcher.enqueued).toHaveLength(1);
    expect(warnings.join("")).toContain("reconciler");
  });

  it.each(["22021", "22P02", "23505"])(
    "retries a group that failed on a row fault (SQLSTATE %s) row by row: only the guilty caller fails",
    async (code) => {
      const { store, dispatcher, writer } = setup();
      const fault = rowFault(code);
      store.guilty.set("c", fault);
      store.held = true;
      const a = writer.submit(newJob("a"));
      const [b, c, d] = ["b", "c", "d"].map((id) => track(writer.submit(newJob(id))));
      store.held = false;
      store.release();
      await a;
      await flush();
      expect(store.inserts).toEqual([["a"], ["b", "c", "d"], ["b"], ["c"], ["d"]]);
      expect([b!.state, c!.state, d!.state]).toEqual(["resolved", "rejected", "resolved"]);
      expect(c!.error).toBe(fault);
      expect(entries(dispatcher.enqueued[1])).toEqual([{ model: "iris", jobIds: ["b", "d"] }]); // only what was stored
    },
  );

  it("rejects a lone submit's row fault without a retry", async () => {
    const { store, dispatcher, writer } = setup();
    store.guilty.set("a", rowFault("23505"));
    await expect(writer.submit(newJob("a"))).rejects.toMatchObject({ code: "23505" });
    expect(store.inserts).toEqual([["a"]]);
    expect(dispatcher.enqueued).toEqual([]);
  });

  it.each([
    ["a connection failure (08006)", Object.assign(new Error("terminating connection"), { code: "08006" })],
    ["an error without a SQLSTATE", new Error("pool closed")],
  ])("rejects the whole group on %s, enqueues nothing, and goes on with the next", async (_label, outage) => {
    const { store, dispatcher, writer } = setup();
    store.held = true;
    const a = writer.submit(newJob("a"));
    const group = ["b", "c"].map((id) => track(writer.submit(newJob(id))));
    store.held = false;
    store.outage = outage;
    store.release();
    await expect(a).rejects.toBe(outage); // a was held when the outage began
    await flush();
    expect(group.map((t) => [t.state, t.error])).toEqual([
      ["rejected", outage],
      ["rejected", outage],
    ]);
    expect(store.inserts).toEqual([["a"], ["b", "c"]]); // no row-by-row retry
    expect(dispatcher.enqueued).toEqual([]);

    store.outage = undefined;
    await writer.submit(newJob("e"));
    expect(store.inserts.at(-1)).toEqual(["e"]);
  });

  it("fails only the job whose Idempotency-Key another process took (23505): the rest of its group is stored", async () => {
    const { store, writer } = setup();
    store.held = true;
    const first = track(writer.submit(newJob("a")));
    await flush();
    store.guilty.set("c", rowFault("23505"));
    const group = ["b", "c", "d"].map((id) => track(writer.submit(newJob(id))));
    store.release();
    await flush();
    store.held = false;
    store.release();
    await flush();
    expect(first.state).toBe("resolved");
    expect(group.map((t) => t.state)).toEqual(["resolved", "rejected", "resolved"]);
    expect(group[1]!.error).toMatchObject({ code: "23505" });
  });

  it("answers submits whose insert committed though its answer was lost, and refuses those it cannot confirm", async () => {
    const { store, dispatcher, writer } = setup();
    store.outage = new Error("Connection terminated unexpectedly");
    store.committedDespiteOutage.add("a");
    await expect(writer.submit(newJob("a"))).resolves.toBeUndefined();
    expect(dispatcher.enqueued.flat().flatMap((g) => g.jobIds)).toEqual(["a"]);
    await expect(writer.submit(newJob("b"))).rejects.toThrow("Connection terminated unexpectedly");
  });
});

/** The outcome path's inserts of the result cache's jobs: each call recorded; `held` makes calls wait; a guilty job fails its statement. */
class FakeCachedWriter {
  answered: string[][] = [];
  followed: Array<{ leader: string; jobs: string[] }> = [];
  guilty = new Map<string, Error>();
  held = false;
  private holds: Array<() => void> = [];

  async insertAnswered(jobs: AnsweredJob[]): Promise<void> {
    this.answered.push(jobs.map((j) => j.id));
    await this.hold();
    const fault = jobs.map((j) => this.guilty.get(j.id)).find(Boolean);
    if (fault) throw fault;
  }

  async insertFollowers(leader: FlightLeader, jobs: NewJob[]): Promise<FollowResult> {
    this.followed.push({ leader: leader.id, jobs: jobs.map((j) => j.id) });
    await this.hold();
    return {
      leaderStatus: "queued",
      inserted: jobs.map((j) => ({
        id: j.id,
        tenantId: j.tenantId,
        model: j.model,
        status: "queued",
        webhook: null,
        result: null,
      })),
    };
  }

  release(): void {
    this.holds.shift()!();
  }

  private async hold(): Promise<void> {
    if (!this.held) return;
    const gate = deferred();
    this.holds.push(gate.resolve);
    await gate.promise;
  }
}

function setupCached() {
  const base = setup();
  const cached = new FakeCachedWriter();
  const writer = new SubmitWriter(
    asStore(base.store),
    asDispatcher(base.dispatcher),
    new FakeBacklog(),
    pino({ level: "silent" }),
    cached,
  );
  return { ...base, cached, writer };
}

const answeredJob = (id: string): AnsweredJob => ({ ...newJob(id), resultJson: "{}", answeredAt: new Date(0) });
const leaderOf = (id: string): FlightLeader => ({ id, tenantId: "t", cacheKey: `key-${id}` });

describe("SubmitWriter, the result cache's jobs", () => {
  it("groups answered jobs that arrive during a write into one insert, beside the runs, and never enqueues them", async () => {
    const { cached, store, dispatcher, writer } = setupCached();
    cached.held = true;
    const first = writer.answer(answeredJob("h1"));
    const rest = [writer.answer(answeredJob("h2")), writer.answer(answeredJob("h3")), writer.submit(newJob("r1"))];
    await flush();
    cached.release();
    await first;
    await flush();
    cached.release();
    await Promise.all(rest);
    expect(cached.answered).toEqual([["h1"], ["h2", "h3"]]);
    expect(store.inserts).toEqual([["r1"]]);
    expect(dispatcher.enqueued.flat().flatMap((g) => g.jobIds)).toEqual(["r1"]);
  });

  it("after a row fault in a group of answered jobs, fails only the guilty one", async () => {
    const { cached, writer } = setupCached();
    cached.held = true;
    const first = writer.answer(answeredJob("h0"));
    const [ok, bad] = [track(writer.answer(answeredJob("h1"))), track(writer.answer(answeredJob("h2")))];
    cached.guilty.set("h2", rowFault("22P05"));
    cached.release();
    await first;
    cached.held = false;
    await sleepUntilSettled([ok, bad]);
    expect(ok.state).toBe("resolved");
    expect(bad.state).toBe("rejected");
    expect(cached.answered).toEqual([["h0"], ["h1", "h2"], ["h1"], ["h2"]]);
  });

  it("writes followers in one statement per leader, each caller told its own outcome", async () => {
    const { cached, writer } = setupCached();
    cached.held = true;
    const first = writer.follow(leaderOf("L0"), newJob("f0"));
    const later = [
      writer.follow(leaderOf("L1"), newJob("f1")),
      writer.follow(leaderOf("L2"), newJob("f2")),
      writer.follow(leaderOf("L1"), newJob("f3")),
    ];
    await flush();
    cached.release();
    await first;
    await flush();
    cached.release();
    cached.release();
    const outcomes = await Promise.all(later);
    expect(cached.followed).toEqual([
      { leader: "L0", jobs: ["f0"] },
      { leader: "L1", jobs: ["f1", "f3"] },
      { leader: "L2", jobs: ["f2"] },
    ]);
    expect(outcomes.map((o) => [o.leaderStatus, o.inserted?.id])).toEqual([
      ["queued", "f1"],
      ["queued", "f2"],
      ["queued", "f3"],
    ]);
  });
});

/** Lets settled promises' callbacks run until every tracked promise has settled (macrotask turns, no wall-clock wait). */
async function sleepUntilSettled(tracked: Array<{ state: string }>): Promise<void> {
  for (let i = 0; i < 100 && tracked.some((t) => t.state === "pending"); i++) await flush();
}
