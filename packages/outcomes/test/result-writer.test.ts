import { describe, expect, it } from "vitest";
import type { FinishedJob, JobOutcome } from "@inferline/db";
import { ResultWriter, type Written } from "../src/result-writer.ts";

// Unit tests of the grouping logic, over an in-memory persist; the transaction that really
// writes results is covered end to end (e2e: jobs, webhooks, zombie-worker, outages) and per system in this folder.

/** Lets every pending promise callback run (one macrotask turn; no wall-clock wait). */
const flush = () => new Promise<void>((r) => setImmediate(r));

function track(promise: Promise<unknown>): {
  state: "pending" | "resolved" | "rejected";
  value?: unknown;
  error?: unknown;
} {
  const t: { state: "pending" | "resolved" | "rejected"; value?: unknown; error?: unknown } = { state: "pending" };
  promise.then(
    (value: unknown) => Object.assign(t, { state: "resolved", value }),
    (error: unknown) => Object.assign(t, { state: "rejected", error }),
  );
  return t;
}

const ok = (id: string): JobOutcome => ({ id, status: "succeeded", resultJson: "{}" });
const rowFault = (code: string) => Object.assign(new Error(`row fault ${code}`), { code });

/**
 * A persist that records each group, finishes every job not already terminal, and records one
 * event per finished job; `held` makes each call wait for release(); a guilty job fails the call.
 */
class FakeResults {
  writes: Array<{ jobs: string[]; dispatches: string[] }> = [];
  /** Each write's `standalone`, in the order of `writes`. */
  standalone: boolean[] = [];
  afters: Array<Written<string[]>> = [];
  terminal = new Set<string>();
  guilty = new Map<string, Error>();
  outage: Error | undefined;
  afterFails = false;
  /** When set, each `after` waits for it before it finishes. */
  afterGate: Promise<void> | undefined;
  aftersDone = 0;
  held = false;
  private holds: Array<() => void> = [];

  persist = async (outcomes: JobOutcome[], dispatches: string[], standalone: boolean): Promise<Written<string[]>> => {
    this.writes.push({ jobs: outcomes.map((o) => o.id), dispatches });
    this.standalone.push(standalone);
    if (this.held) await new Promise<void>((r) => this.holds.push(r));
    if (this.outage) throw this.outage;
    const fault = outcomes.map((o) => this.guilty.get(o.id)).find(Boolean);
    if (fault) throw fault;
    const finished: FinishedJob[] = outcomes
      .filter((o) => !this.terminal.has(o.id))
      .map((o) => ({ id: o.id, tenantId: "t", status: o.status, webhook: null, model: "m" }));
    return { finished, recorded: finished.map((f) => `event:${f.id}`) };
  };

  after = async (written: Written<string[]>): Promise<void> => {
    this.afters.push(written);
    if (this.afterGate) await this.afterGate;
    this.aftersDone++;
    if (this.afterFails) throw new Error("redis refused the notification");
  };

  release(): void {
    this.holds.shift()!();
  }
}

function setup() {
  const results = new FakeResults();
  return { results, writer: new ResultWriter(results.persist, results.after) };
}

const ids = (jobs: unknown) => (jobs as FinishedJob[]).map((j) => j.id);

describe("ResultWriter", () => {
  it("writes a lone result at once and resolves with the jobs it finished", async () => {
    const { results, writer } = setup();
    const written = writer.write([ok("a")], "d1");
    expect(results.writes).toEqual([{ jobs: ["a"], dispatches: ["d1"] }]); // called before write returned: no timer
    expect(ids(await written)).toEqual(["a"]);
  });

  it("does nothing for no outcomes and no queue entry", async () => {
    const { results, writer } = setup();
    await expect(writer.write([])).resolves.toEqual([]);
    expect(results.writes).toEqual([]);
    await writer.write([], "d1"); // an entry whose jobs were all terminal is still marked done
    expect(results.writes).toEqual([{ jobs: [], dispatches: ["d1"] }]);
  });

  it("groups writes that arrive during a write into the next one, and answers each caller its own jobs", async () => {
    const { results, writer } = setup();
    results.held = true;
    results.terminal.add("c2"); // already canceled: written, but not finished by this write
    const first = track(writer.write([ok("a")], "d1"));
    const second = track(writer.write([ok("b1"), ok("b2")], "d2"));
    const third = track(writer.write([ok("c1"), ok("c2")])); // no queue entry (e.g. a retry's partial write)
    await flush();
    expect(results.writes).toHaveLength(1);

    results.release();
    await flush();
    expect(first.state).toBe("resolved");
    expect(results.writes[1]).toEqual({ jobs: ["b1", "b2", "c1", "c2"], dispatches: ["d2"] });
    expect([second.state, third.state]).toEqual(["pending", "pending"]);

    results.release();
    await flush();
    expect(ids(second.value)).toEqual(["b1", "b2"]);
    expect(ids(third.value)).toEqual(["c1"]);
  });

  it("writes a group as standalone only when every write in it is (one that is not brings the transaction)", async () => {
    const { results, writer } = setup();
    results.held = true;
    const first = writer.write([ok("a")], "d1", true);
    const alone = [writer.write([ok("b")], "d2", true), writer.write([ok("c")], "d3", true)];
    await flush();
    results.release();
    await first;
    await flush();
    const mixed = [writer.write([ok("d")], "d4", true), writer.write([ok("e")], "d5")];
    results.release();
    await Promise.all(alone);
    await flush();
    results.release();
    await Promise.all(mixed);
    expect(results.writes.map((w) => w.jobs)).toEqual([["a"], ["b", "c"], ["d", "e"]]);
    expect(results.standalone).toEqual([true, true, false]);
  });

  it("runs `after` once per committed group, and resolves its callers once it has finished", async () => {
    const { results, writer } = setup();
    let openGate!: () => void;
    results.afterGate = new Promise<void>((r) => (openGate = r));
    results.held = true;
    // Each caller notes how many `after`s had finished when it resolved.
    const first = track(writer.write([ok("a")]).then(() => results.aftersDone));
    const rest = Promise.all([writer.write([ok("b")]), writer.write([ok("c")])]).then(() => results.aftersDone);
    results.held = false;
    results.release();
    await flush();
    expect(results.afters).toHaveLength(1);
    expect(first.state).toBe("pending"); // committed, but its `after` has not finished
    openGate();
    expect(await rest).toBe(2);
    expect(first.value).toBe(1);
    expect(results.afters).toEqual([
      { finished: [expect.objectContaining({ id: "a" })], recorded: ["event:a"] },
      {
        finished: [expect.objectContaining({ id: "b" }), expect.objectContaining({ id: "c" })],
        recorded: ["event:b", "event:c"],
      },
    ]);
  });

  it("resolves its callers when `after` fails: the results are committed", async () => {
    const { results, writer } = setup();
    results.afterFails = true;
    expect(ids(await writer.write([ok("a")], "d1"))).toEqual(["a"]);
    expect(results.afters).toHaveLength(1);
  });

  it.each(["22P05", "23505"])(
    "retries a group that failed on a row fault (SQLSTATE %s) caller by caller: only the guilty caller fails",
    async (code) => {
      const { results, writer } = setup();
      const fault = rowFault(code);
      results.guilty.set("c1", fault);
      results.held = true;
      const first = writer.write([ok("a")], "d1");
      const [b, c, d] = [["b1"], ["c0", "c1"], ["d1"]].map((jobs, i) => track(writer.write(jobs.map(ok), `e${i}`)));
      results.held = false;
      results.release();
      await first;
      await flush();
      expect(results.writes.map((w) => w.jobs)).toEqual([
        ["a"],
        ["b1", "c0", "c1", "d1"],
        ["b1"],
        ["c0", "c1"],
        ["d1"],
      ]);
      expect([b!.state, c!.state, d!.state]).toEqual(["resolved", "rejected", "resolved"]);
      expect(c!.error).toBe(fault);
      expect(ids(b!.value)).toEqual(["b1"]);
      // `after` for each committed write: a's group, then b's and d's on their own.
      expect(results.afters.map((w) => w.recorded)).toEqual([["event:a"], ["event:b1"], ["event:d1"]]);
    },
  );

  it("rejects a lone write's row fault without a retry", async () => {
    const { results, writer } = setup();
    results.guilty.set("a", rowFault("23505"));
    await expect(writer.write([ok("a"), ok("b")], "d1")).rejects.toMatchObject({ code: "23505" });
    expect(results.writes).toHaveLength(1);
    expect(results.afters).toEqual([]);
  });

  it("rejects the whole group on any other failure, runs no `after`, and goes on with the next", async () => {
    const { results, writer } = setup();
    const outage = Object.assign(new Error("terminating connection"), { code: "57P01" });
    results.held = true;
    const first = writer.write([ok("a")]);
    const group = [track(writer.write([ok("b")])), track(writer.write([ok("c")]))];
    results.held = false;
    results.outage = outage;
    results.release();
    await expect(first).rejects.toBe(outage);
    await flush();
    expect(group.map((t) => [t.state, t.error])).toEqual([
      ["rejected", outage],
      ["rejected", outage],
    ]);
    expect(results.writes).toHaveLength(2); // no caller-by-caller retry
    expect(results.afters).toEqual([]);

    results.outage = undefined;
    expect(ids(await writer.write([ok("e")]))).toEqual(["e"]);
  });
});
