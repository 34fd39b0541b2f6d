import { describe, expect, it } from "vitest";
import { waitForDependencies, type DependencyCheck } from "../src/dependency-wait.ts";

const FAST = { baseMs: 1, maxMs: 2 };

function recorder() {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warn: (_obj: object, msg: string) => void lines.push(`warn ${msg}`),
      info: (_obj: object, msg: string) => void lines.push(`info ${msg}`),
    },
  };
}

/** A dependency that is away for its first `away` checks. */
function awayFor(name: string, away: number): DependencyCheck & { checks: number } {
  return {
    name,
    checks: 0,
    async check() {
      if (++this.checks <= away) throw new Error(`${name} refused`);
    },
  };
}

describe("waitForDependencies", () => {
  it("resolves at once, logging nothing, when every dependency answers", async () => {
    const { lines, log } = recorder();
    await waitForDependencies([awayFor("PostgreSQL", 0), awayFor("Redis", 0)], log, undefined, FAST);
    expect(lines).toEqual([]);
  });

  it("checks again until a dependency is back, logging once when it is away and once when it returns", async () => {
    const { lines, log } = recorder();
    const redis = awayFor("Redis", 3);
    await waitForDependencies([awayFor("PostgreSQL", 0), redis], log, undefined, FAST);
    expect(redis.checks).toBe(4);
    expect(lines).toEqual(["warn Redis is not reachable yet; waiting for it", "info Redis is reachable; starting"]);
  });

  it("rejects when aborted while a dependency stays away", async () => {
    const { log } = recorder();
    const abort = new AbortController();
    const never = awayFor("PostgreSQL", Infinity);
    const waiting = waitForDependencies([never], log, abort.signal, FAST);
    abort.abort(new Error("shutting down"));
    await expect(waiting).rejects.toThrow("shutting down");
  });
});
