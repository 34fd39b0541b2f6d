import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { irisJob, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const API_MAIN = path.join(ROOT, "apps/api/src/main.ts");
const WORKER_MAIN = path.join(ROOT, "apps/worker/src/main.ts");

function run(file: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return { child, output: () => out };
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

describe("start-up with a dependency down", () => {
  it.each([
    ["api", API_MAIN, { REDIS_URL: "redis://127.0.0.1:1" }, "Redis is not reachable at redis://127.0.0.1:1"],
    ["api", API_MAIN, { DATABASE_URL: "postgresql://postgres@127.0.0.1:1/inferline" }, "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/inferline"],
    ["worker", WORKER_MAIN, { REDIS_URL: "redis://127.0.0.1:1" }, "Redis is not reachable at redis://127.0.0.1:1"],
    ["worker", WORKER_MAIN, { DATABASE_URL: "postgresql://postgres@127.0.0.1:1/inferline" }, "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/inferline"],
  ])("%s exits 1 with one line naming the URL and how to start it (%s)", async (_name, file, env, expected) => {
    const { child, output } = run(file, { PORT: "0", METRICS_PORT: "0", ...env });
    expect(await exitOf(child)).toBe(1);
    const lines = output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(expected);
    expect(lines[0]).toMatch(/start it with/);
    expect(output()).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a bad variable is named, without a stack trace", async () => {
    const { child, output } = run(API_MAIN, { PORT: "not-a-port" });
    expect(await exitOf(child)).toBe(1);
    expect(output()).toContain("PORT");
    expect(output()).not.toMatch(/\n\s+at /);
  });
});

describe("worker SIGTERM", () => {
  let stack: TestStack;
  let db: Database;
  beforeAll(async () => {
    stack = await startStack({ worker: false });
    db = new Database(stack.db.url, { poolSize: 1 });
  });
  afterAll(async () => {
    await db?.close();
    await stack?.close();
  });

  it("finishes or hands back its in-flight jobs and exits 0; nothing is lost or left running", async () => {
    const total = 3000;
    const body = irisJob();
    for (let i = 0; i < total; i += 100) await Promise.all(Array.from({ length: 100 }, () => stack.alpha.post("/v1/jobs", body)));
    const worker = run(WORKER_MAIN, { ...stack.workerEnv, WORKER_CONCURRENCY: "4", LOG_LEVEL: "info" });
    const succeeded = async () => Number((await db.pool.query(`select count(*) from jobs where status = 'succeeded'`)).rows[0].count);
    await sleepUntil(async () => (await succeeded()) > 0, { timeoutMs: 20_000, intervalMs: 5, message: "the worker never finished a job" });
    worker.child.kill("SIGTERM");
    expect(await exitOf(worker.child)).toBe(0);
    expect(worker.output()).toContain("worker stopped");
    const counts = Object.fromEntries((await db.pool.query(`select status, count(*)::int as n from jobs group by status`)).rows.map((r) => [r.status, r.n]));
    expect(counts.running ?? 0).toBe(0);
    expect((counts.succeeded ?? 0) + (counts.queued ?? 0)).toBe(total);
    // What it handed back is still queued and another worker completes it.
    await stack.startWorker();
    await sleepUntil(async () => (await succeeded()) === total, { timeoutMs: 30_000, message: "not every job succeeded" });
    const attempts = (await db.pool.query(`select max(attempts)::int as m from jobs`)).rows[0].m;
    expect(attempts).toBe(1);
  }, 60_000);
});
