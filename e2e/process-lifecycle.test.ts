import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import {
  createPgCluster,
  createTestModelRepository,
  freePort,
  irisJob,
  sleepUntil,
  startRedisServer,
  uniquePrefix,
  type PgCluster,
  type RedisServer,
} from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const API_MAIN = path.join(ROOT, "apps/api/src/main.ts");
const WORKER_MAIN = path.join(ROOT, "apps/worker/src/main.ts");

function run(file: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", file], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
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

/** GET `url`: its status and body, or 0 when nothing answers. */
async function probe(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

describe("start-up with a dependency down", () => {
  let cluster: PgCluster;
  let redis: RedisServer;
  let databaseUrl: string;
  beforeAll(async () => {
    [cluster, redis] = await Promise.all([createPgCluster(), startRedisServer()]);
    databaseUrl = await cluster.createDatabase();
  });
  afterAll(async () => {
    await redis?.remove();
    await cluster?.remove();
  });

  it.each(["api", "worker"] as const)(
    "%s waits for PostgreSQL and Redis, alive but not ready, says so once each, and serves once they are back",
    async (name) => {
      await Promise.all([cluster.stop("immediate"), redis.kill()]);
      const port = await freePort();
      const models = createTestModelRepository();
      const env = {
        DATABASE_URL: databaseUrl,
        REDIS_URL: redis.url,
        QUEUE_PREFIX: uniquePrefix(),
        MODELS_DIR: models.dir,
        LOG_LEVEL: "info",
      };
      const app =
        name === "api"
          ? run(API_MAIN, { ...env, PORT: String(port), HOST: "127.0.0.1" })
          : run(WORKER_MAIN, { ...env, METRICS_PORT: String(port), WORKER_MODELS: "iris" });
      try {
        const base = `http://127.0.0.1:${port}`;
        await sleepUntil(async () => (await probe(`${base}/healthz`)).status === 200, {
          timeoutMs: 20_000,
          message: `${name} answers /healthz while waiting`,
        });
        const ready = await probe(`${base}/readyz`);
        expect(ready.status).toBe(503);
        if (name === "api") {
          const submit = await fetch(`${base}/v1/jobs`, { method: "POST", body: "{}" });
          expect(submit.status).toBe(503);
          expect(submit.headers.get("retry-after")).toBe("5");
          expect(((await submit.json()) as { code: string }).code).toBe("starting");
        }
        await sleepUntil(
          () => /PostgreSQL is not reachable yet/.test(app.output()) && /Redis is not reachable yet/.test(app.output()),
          { timeoutMs: 10_000, message: "it says what it waits for" },
        );
        await Promise.all([cluster.start(), redis.start()]);
        await sleepUntil(async () => (await probe(`${base}/readyz`)).status === 200, {
          timeoutMs: 30_000,
          message: `${name} becomes ready once both are back`,
        });
        expect(app.child.exitCode).toBeNull();
        const said = (what: RegExp) =>
          app
            .output()
            .split("\n")
            .filter((line) => what.test(line)).length;
        expect(said(/PostgreSQL is not reachable yet/)).toBe(1);
        expect(said(/Redis is not reachable yet/)).toBe(1);
        expect(said(/is reachable; starting/)).toBe(2);
        app.child.kill("SIGTERM");
        expect(await exitOf(app.child)).toBe(0);
      } finally {
        app.child.kill("SIGKILL");
        models.remove();
      }
    },
    90_000,
  );

  it("a process told to stop while it waits exits 0 at once", async () => {
    await redis.kill();
    const port = await freePort();
    const app = run(API_MAIN, {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: "127.0.0.1",
    });
    try {
      await sleepUntil(() => /Redis is not reachable yet/.test(app.output()), {
        timeoutMs: 20_000,
        message: "it waits for Redis",
      });
      app.child.kill("SIGTERM");
      expect(await exitOf(app.child)).toBe(0);
    } finally {
      app.child.kill("SIGKILL");
      await redis.start();
    }
  }, 60_000);

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
    for (let i = 0; i < total; i += 100)
      await Promise.all(Array.from({ length: 100 }, () => stack.alpha.post("/v1/jobs", body)));
    const worker = run(WORKER_MAIN, { ...stack.workerEnv, WORKER_CONCURRENCY: "4", LOG_LEVEL: "info" });
    const succeeded = async () =>
      Number((await db.pool.query(`select count(*) from jobs where status = 'succeeded'`)).rows[0].count);
    await sleepUntil(async () => (await succeeded()) > 0, {
      timeoutMs: 20_000,
      intervalMs: 5,
      message: "the worker never finished a job",
    });
    worker.child.kill("SIGTERM");
    expect(await exitOf(worker.child)).toBe(0);
    expect(worker.output()).toContain("worker stopped");
    const counts = Object.fromEntries(
      (await db.pool.query(`select status, count(*)::int as n from jobs group by status`)).rows.map((r) => [
        r.status,
        r.n,
      ]),
    );
    expect(counts.running ?? 0).toBe(0);
    expect((counts.succeeded ?? 0) + (counts.queued ?? 0)).toBe(total);
    // What it handed back is still queued and another worker completes it.
    await stack.startWorker();
    await sleepUntil(async () => (await succeeded()) === total, {
      timeoutMs: 30_000,
      message: "not every job succeeded",
    });
    const attempts = (await db.pool.query(`select max(attempts)::int as m from jobs`)).rows[0].m;
    expect(attempts).toBe(1);
  }, 60_000);
});
