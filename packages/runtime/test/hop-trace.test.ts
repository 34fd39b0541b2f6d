import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HopTrace } from "../src/hop-trace.ts";

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hop-trace-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function lines(dir: string): string[][] {
  return fs
    .readdirSync(dir)
    .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))
    .filter(Boolean)
    .map((l) => l.split(","));
}

describe("HopTrace", () => {
  it("is off without a directory: nothing recorded, now() is 0", () => {
    const trace = new HopTrace(undefined);
    expect(trace.enabled).toBe(false);
    expect(trace.now()).toBe(0);
    trace.mark(crypto.randomUUID(), "api.in");
    trace.flush();
  });

  it("writes jobId,hop,epochMs lines to <dir>/<pid>.csv, with a time taken earlier when given", () => {
    const dir = tempDir();
    const trace = new HopTrace(dir);
    const id = crypto.randomUUID();
    const before = Date.now();
    const early = trace.now();
    trace.mark(id, "api.stored");
    trace.markAll([id, (id.startsWith("0") ? "1" : "0") + id.slice(1)], "api.enqueued");
    trace.mark(id, "api.in", early);
    trace.flush();
    expect(fs.readdirSync(dir)).toEqual([`${process.pid}.csv`]);
    const got = lines(dir);
    expect(got.map(([j, hop]) => `${j === id ? "id" : "other"} ${hop}`)).toEqual([
      "id api.stored",
      "id api.enqueued",
      "other api.enqueued",
      "id api.in",
    ]);
    const at = Object.fromEntries(got.filter(([j]) => j === id).map(([, hop, t]) => [hop, Number(t)]));
    expect(at["api.in"]).toBe(Number(early.toFixed(3)));
    expect(at["api.stored"]).toBeGreaterThanOrEqual(at["api.in"]);
    expect(Math.abs(at["api.stored"]! - before)).toBeLessThan(60_000); // epoch milliseconds, the clock every process shares
  });

  it("samples by the id's first hex digit, so that every process traces the same jobs", () => {
    const dir = tempDir();
    const trace = new HopTrace(dir, 0.25);
    const ids = "0123456789abcdef".split("").map((d) => d + crypto.randomUUID().slice(1));
    for (const id of ids) trace.mark(id, "worker.picked");
    trace.flush();
    expect(lines(dir).map(([id]) => id![0])).toEqual(["0", "1", "2", "3"]);
  });

  it("starts later when made off, and keeps its first directory when started again", () => {
    const [first, second] = [tempDir(), tempDir()];
    const trace = new HopTrace();
    trace.start(undefined);
    expect(trace.enabled).toBe(false);
    trace.start(first, 1);
    trace.start(second, 0);
    const id = crypto.randomUUID();
    trace.mark(id, "api.in");
    trace.flush();
    expect(lines(first).map(([j, hop]) => `${j === id ? "id" : "other"} ${hop}`)).toEqual(["id api.in"]);
    expect(fs.readdirSync(second)).toEqual([]);
  });
});

describe("the process's trace (hops)", () => {
  it("reads no environment at import: it stays off until a composition root starts it", async () => {
    const dir = tempDir();
    vi.stubEnv("INFERLINE_TRACE_HOPS", dir);
    vi.resetModules();
    try {
      const { hops } = await import("../src/hop-trace.ts");
      expect(hops.enabled).toBe(false);
      hops.mark(crypto.randomUUID(), "api.in");
      hops.flush();
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
