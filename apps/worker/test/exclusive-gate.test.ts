import { describe, expect, it } from "vitest";
import { ExclusiveGate } from "../src/exclusive-gate.ts";

/** Lets every pending promise callback run (one macrotask turn; no wall-clock wait). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A run that records when it started and finishes when told to (or fails). */
function task<T>(value: T) {
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const t = {
    started: false,
    run: () => {
      t.started = true;
      return new Promise<T>((resolve, reject) => {
        finish = () => resolve(value);
        fail = reject;
      });
    },
    finish: () => finish(),
    fail: (err: Error) => fail(err),
  };
  return t;
}

describe("ExclusiveGate", () => {
  it("runs shared entries side by side and answers each its own value", async () => {
    const gate = new ExclusiveGate();
    const [a, b] = [task("a"), task("b")];
    const results = [gate.runShared(a.run), gate.runShared(b.run)];
    await flush();
    expect([a.started, b.started]).toEqual([true, true]);
    b.finish();
    a.finish();
    expect(await Promise.all(results)).toEqual(["a", "b"]);
  });

  it("starts an exclusive run once the shared ones in flight finish, and holds back shared ones that arrive meanwhile", async () => {
    const gate = new ExclusiveGate();
    const [s1, s2, x, late] = [task(1), task(2), task("x"), task(3)];
    const runs: Array<Promise<unknown>> = [gate.runShared(s1.run), gate.runShared(s2.run)];
    await flush();
    runs.push(gate.runExclusive(x.run), gate.runShared(late.run));
    await flush();
    expect([x.started, late.started]).toEqual([false, false]); // writer preference: the late shared one waits too

    s1.finish();
    await flush();
    expect(x.started).toBe(false); // s2 is still in flight
    s2.finish();
    await flush();
    expect([x.started, late.started]).toEqual([true, false]);

    x.finish();
    await flush();
    expect(late.started).toBe(true);
    late.finish();
    expect(await Promise.all(runs)).toEqual([1, 2, "x", 3]);
  });

  it("runs exclusive entries one at a time, in arrival order with the shared ones", async () => {
    const gate = new ExclusiveGate();
    const [x1, x2, s] = [task("x1"), task("x2"), task("s")];
    const runs = [gate.runExclusive(x1.run), gate.runExclusive(x2.run), gate.runShared(s.run)];
    await flush();
    expect([x1.started, x2.started, s.started]).toEqual([true, false, false]);
    x1.finish();
    await flush();
    expect([x2.started, s.started]).toEqual([true, false]);
    x2.finish();
    await flush();
    expect(s.started).toBe(true);
    s.finish();
    await Promise.all(runs);
  });

  it("releases the gate when a run fails, and rejects only that run", async () => {
    const gate = new ExclusiveGate();
    const boom = new Error("boom");
    const [s, x, after] = [task(1), task(2), task(3)];
    const shared = gate.runShared(s.run);
    const exclusive = gate.runExclusive(x.run);
    const next = gate.runShared(after.run);
    await flush();
    s.fail(boom);
    await expect(shared).rejects.toBe(boom);
    await flush();
    expect(x.started).toBe(true); // the failed shared run no longer counts as in flight
    x.fail(boom);
    await expect(exclusive).rejects.toBe(boom);
    await flush();
    expect(after.started).toBe(true); // nor does the failed exclusive one hold the gate
    after.finish();
    await expect(next).resolves.toBe(3);
  });

  it("releases the gate when a run throws before returning a promise", async () => {
    const gate = new ExclusiveGate();
    const boom = new Error("sync");
    await expect(
      gate.runExclusive(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(gate.runExclusive(async () => "free")).resolves.toBe("free");
  });
});
