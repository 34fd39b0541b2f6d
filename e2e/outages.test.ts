import http from "node:http";
import { Writable } from "node:stream";
import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, isPostgresUnavailable, TenantStore } from "@inferline/db";
import {
  ApiClient,
  createPgCluster,
  createTestModelRepository,
  irisInput,
  irisJob,
  IRIS_SAMPLES,
  sleepUntil,
  startRedisServer,
  uniquePrefix,
  type HttpResponse,
  type PgCluster,
  type RedisServer,
} from "@inferline/testing";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";
import { exitOf, runProcess, WORKER_MAIN, type RunningProcess } from "./support/processes.ts";

/**
 * Dependency outages against a PostgreSQL cluster and a redis-server of this file's own, which it
 * stops, freezes and kills: every route answers 503 + Retry-After as problem+json within 2 s, no
 * process dies, and everything serves again once the dependency is back. The API runs in this
 * process (an unhandled 'error' would fail the run), the worker as a child process (so its survival
 * is visible as a live pid).
 */

/** How long an answer may take while a dependency is down: a client must hear 503 soon, not hang. */
const BOUND_MS = 2000;

let cluster: PgCluster;
let redisServer: RedisServer;
let models: { dir: string; remove(): void };
let api: RunningApi;
let worker: RunningProcess;
let databaseUrl: string;
let alpha: ApiClient;
let anonymous: ApiClient;
/** Keys never used before their outage, so their lookup must reach PostgreSQL. */
const unusedKeys: string[] = [];
const logs: Array<{ level: number; msg: string; [key: string]: unknown }> = [];

/** A job and a batch made while everything was up, read during the outages. */
let jobId: string;
let hookedJobId: string;
let batchId: string;

beforeAll(async () => {
  [cluster, redisServer] = await Promise.all([createPgCluster(), startRedisServer()]);
  databaseUrl = await cluster.createDatabase();
  models = createTestModelRepository();
  const prefix = uniquePrefix();
  const shared = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisServer.url,
    QUEUE_PREFIX: prefix,
    MODELS_DIR: models.dir,
    RETRY_BACKOFF_MS: "50",
    WEBHOOK_ALLOW_PRIVATE: "true",
  };
  worker = runProcess(WORKER_MAIN, {
    ...shared,
    LOG_LEVEL: "warn",
    METRICS_PORT: "0",
    INFERENCE_THREADS: "0",
    // Jobs that Redis lost come back quickly.
    RECONCILE_INTERVAL_MS: "300",
    RECONCILE_AFTER_MS: "1000",
    // Webhook events are recorded (redelivery needs one) but never sent.
    WEBHOOK_CONCURRENCY: "0",
    // A frozen server holds the worker's queries for this long plus 1 s.
    DATABASE_STATEMENT_TIMEOUT_MS: "2000",
  });
  const logger = pino(
    { level: "warn" },
    new Writable({
      write(chunk, _enc, done) {
        logs.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  // A hung server is found by the query timeout (statement timeout and a fifth), which the API's
  // defaults put at 1.8 s: the freeze below is held to the 2 s bound with the defaults.
  api = await startApi(loadApiEnv({ ...shared, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" }), logger);
  const admin = new Database(databaseUrl, { poolSize: 1 });
  const tenants = new TenantStore(admin.pool, admin.prisma);
  alpha = new ApiClient(api.url, (await tenants.createKey("alpha")).key);
  for (let i = 0; i < 2; i++) unusedKeys.push((await tenants.createKey(`unused-${i}`)).key);
  await admin.close();
  anonymous = new ApiClient(api.url);

  // The worker is up once it has run a job.
  const first = await alpha.post("/v1/jobs", irisJob([IRIS_SAMPLES.setosa]));
  expect(first.status).toBe(202);
  jobId = first.body.id;
  await sleepUntil(async () => (await alpha.get(`/v1/jobs/${jobId}`)).body.status === "succeeded", {
    timeoutMs: 45_000,
    message: `the worker runs a job (${worker.output()})`,
  });
  const hooked = await alpha.post(
    "/v1/jobs",
    irisJob([IRIS_SAMPLES.virginica], { webhook: { url: "http://127.0.0.1:9/hook" } }),
  );
  hookedJobId = hooked.body.id;
  const batch = await alpha.post("/v1/batches", {
    model: "iris",
    items: [{ inputs: [irisInput([IRIS_SAMPLES.versicolor])] }],
  });
  expect(batch.status).toBe(202);
  batchId = batch.body.id;
  await sleepUntil(async () => (await alpha.get(`/v1/jobs/${hookedJobId}`)).body.status === "succeeded", {
    timeoutMs: 15_000,
  });
}, 120_000);

afterAll(async () => {
  if (worker && worker.child.exitCode === null) {
    worker.child.kill("SIGKILL");
    await exitOf(worker.child);
  }
  await api?.close();
  await cluster?.remove();
  await redisServer?.remove();
  models?.remove();
});

interface Timed {
  name: string;
  res: HttpResponse;
  ms: number;
}

async function timed(name: string, request: () => Promise<HttpResponse>): Promise<Timed> {
  const started = performance.now();
  const res = await request();
  return { name, res, ms: Math.round(performance.now() - started) };
}

/** Every kind of route that reads or writes PostgreSQL, sent at once; each answer is timed on its own. */
function postgresRoutes(key: string): Array<Promise<Timed>> {
  const fresh = alpha.withKey(key);
  return [
    timed("POST /v1/jobs", () => alpha.post("/v1/jobs", irisJob())),
    timed("GET /v1/jobs/:id", () => alpha.get(`/v1/jobs/${jobId}`)),
    timed("GET /v1/jobs/:id?wait", () => alpha.get(`/v1/jobs/${jobId}?wait=5`)),
    timed("GET /v1/jobs", () => alpha.get("/v1/jobs")),
    timed("POST /v1/batches", () =>
      alpha.post("/v1/batches", { model: "iris", items: [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }] }),
    ),
    timed("GET /v1/batches/:id", () => alpha.get(`/v1/batches/${batchId}`)),
    timed("POST /v1/jobs/:id/cancel", () => alpha.post(`/v1/jobs/${jobId}/cancel`)),
    timed("GET /v1/jobs/:id/webhooks", () => alpha.get(`/v1/jobs/${hookedJobId}/webhooks`)),
    timed("GET /v1/webhooks/secret", () => alpha.get("/v1/webhooks/secret")),
    timed("GET /v1/jobs (uncached key)", () => fresh.get("/v1/jobs")),
  ];
}

const measured: Record<string, number[]> = {};

function expectUnavailable(answers: Timed[], dependency: "postgres" | "redis"): void {
  for (const { name, res, ms } of answers) {
    (measured[`${dependency} ${name}`] ??= []).push(ms);
    const what = `${name}: ${res.status} ${res.text.slice(0, 300)}`;
    expect(res.status, what).toBe(503);
    expect(res.headers.get("retry-after"), what).toMatch(/^\d+$/);
    expect(res.headers.get("content-type"), what).toMatch(/^application\/problem\+json/);
    expect(res.body, what).toMatchObject({ status: 503, code: "dependency_unavailable", dependency });
    // A state, never the raw error: no hosts, ports, SQLSTATEs or stack frames.
    expect(res.text, what).not.toMatch(
      /127\.0\.0\.1|ECONNREFUSED|57P01|timeout exceeded|Connection terminated|\bat .*\.ts:\d+/,
    );
    expect(ms, what).toBeLessThan(BOUND_MS);
  }
}

function expectReadyz(answer: Timed, checks: Record<string, string | RegExp>): void {
  (measured[`readyz ${JSON.stringify(answer.res.body?.checks)}`] ??= []).push(answer.ms);
  const what = `${answer.res.status} ${answer.res.text}`;
  expect(answer.res.status, what).toBe(503);
  expect(answer.res.headers.get("retry-after"), what).toMatch(/^\d+$/);
  expect(answer.res.headers.get("content-type"), what).toMatch(/^application\/problem\+json/);
  expect(answer.res.body.code, what).toBe("not_ready");
  for (const [name, state] of Object.entries(checks)) expect(answer.res.body.checks[name], what).toMatch(state);
  expect(answer.ms, what).toBeLessThan(BOUND_MS);
}

function expectAlive(): void {
  expect(worker.child.exitCode, worker.output()).toBeNull();
  expect(worker.child.signalCode, worker.output()).toBeNull();
  expect(worker.output()).not.toMatch(/Unhandled 'error' event|uncaught/i);
  // Outages are logged at warn; nothing reached the 500 path.
  expect(logs.filter((l) => l.level >= 50)).toEqual([]);
}

/** Until the API answers again: readyz 200, then one submit that completes end to end. */
async function expectRecovered(timeoutMs = 30_000): Promise<void> {
  await sleepUntil(async () => (await anonymous.get("/readyz")).status === 200, {
    timeoutMs,
    message: "readyz answers 200 again",
  });
  const after = await postgresRoutesOk();
  const submitted = after.find((a) => a.name === "POST /v1/jobs")!.res.body.id as string;
  await sleepUntil(async () => (await alpha.get(`/v1/jobs/${submitted}?wait=2`)).body.status === "succeeded", {
    timeoutMs,
    message: "a job submitted after recovery completes",
  });
}

async function postgresRoutesOk(): Promise<Timed[]> {
  // Alpha's own key: the unused ones stay unused (uncached) for the outages to come.
  const answers = await Promise.all(postgresRoutes(alpha.apiKey!));
  for (const { name, res } of answers) {
    const expected = name === "POST /v1/jobs/:id/cancel" ? 409 : name.startsWith("POST") ? 202 : 200;
    expect(res.status, `${name}: ${res.text.slice(0, 300)}`).toBe(expected);
  }
  return answers;
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  );
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A streamed NDJSON batch upload: its draft transaction holds a checked-out PostgreSQL connection. */
function startUpload(): { write(lines: number): void; end(): number; response: Promise<HttpResponse> } {
  const line = `${JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })}\n`;
  const req = http.request(`${api.url}/v1/batches?model=iris`, {
    method: "POST",
    headers: { authorization: `Bearer ${alpha.apiKey}`, "content-type": "application/x-ndjson" },
  });
  const response = new Promise<HttpResponse>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: new Headers(res.headers as Record<string, string>),
          body: text ? JSON.parse(text) : undefined,
          text,
        }),
      );
    });
    req.on("error", reject);
  });
  return {
    write: (lines) => void req.write(line.repeat(lines)),
    end: () => {
      req.end();
      return performance.now();
    },
    response,
  };
}

/** Sessions on the test database that match `where`. */
async function activity(where: string): Promise<number> {
  const monitor = new pg.Client({ connectionString: cluster.url() });
  monitor.on("error", () => {});
  await monitor.connect();
  try {
    const { rows } = await monitor.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and ${where}`,
      [new URL(databaseUrl).pathname.slice(1)],
    );
    return rows[0]!.n;
  } finally {
    await monitor.end();
  }
}

describe("PostgreSQL outages", () => {
  it("stopped under open sessions (57P01, then refused): every route answers 503 in time, nothing dies, and all serves again after a restart", async () => {
    // The worker's result write held inside its transaction (Database.transaction: a connection
    // checked out of the pool, which pg-pool does not listen on) by a lock on webhook_events.
    const locker = new pg.Client({ connectionString: databaseUrl });
    locker.on("error", () => {});
    await locker.connect();
    const lockerPid = (await locker.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
    await locker.query("begin; lock table webhook_events in share mode");
    // A run (the result cache bypassed: setosa's result is cached since beforeAll).
    const held = await alpha.post(
      "/v1/jobs",
      irisJob([IRIS_SAMPLES.setosa], { webhook: { url: "http://127.0.0.1:9/hook" }, cache: "bypass" }),
    );
    expect(held.status).toBe(202);
    await sleepUntil(async () => (await activity(`wait_event_type = 'Lock' and query ilike '%webhook_events%'`)) > 0, {
      timeoutMs: 15_000,
      message: "the worker's result write waits on the lock",
    });
    // And a batch upload in the middle of its own transaction.
    const upload = startUpload();
    upload.write(600);
    await sleepUntil(async () => (await activity(`state = 'idle in transaction' and pid <> ${lockerPid}`)) > 0, {
      timeoutMs: 10_000,
      message: "the upload's transaction is open",
    });
    // Connections checked out and idle between two statements (the case that killed a worker in
    // the soak): the server's 57P01 arrives with no query to fail, as an 'error' on the client.
    const db = new Database(databaseUrl, { poolSize: 2 });
    let proceed = () => {};
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    const inTransaction = db.transaction(async (client) => {
      await client.query("select 1");
      await gate;
      await client.query("select 1");
    });
    const inPrismaTransaction = db.prisma.$transaction(async (tx) => {
      await tx.tenant.count();
      await gate;
      await tx.tenant.count();
    });
    await sleepUntil(async () => (await activity(`state = 'idle in transaction'`)) >= 3, {
      timeoutMs: 10_000,
      message: "both transactions are open",
    });
    await cluster.stop("fast");
    await locker.end().catch(() => {});
    proceed();
    for (const outcome of await Promise.allSettled([inTransaction, inPrismaTransaction])) {
      expect(outcome.status).toBe("rejected");
      expect(
        isPostgresUnavailable((outcome as PromiseRejectedResult).reason),
        String((outcome as PromiseRejectedResult).reason),
      ).toBe(true);
    }
    // Both clients went back to the pool and were thrown away: none leaked (Prisma's adapter kept
    // its client for good before poolForPrisma).
    await sleepUntil(() => db.pool.totalCount === 0, {
      timeoutMs: 3000,
      message: `no client is leaked (${db.pool.totalCount} left)`,
    });
    await db.close();

    upload.write(600);
    const ended = upload.end();
    const uploadAnswer = await upload.response;
    expectUnavailable(
      [
        {
          name: "POST /v1/batches (streaming when stopped)",
          res: uploadAnswer,
          ms: Math.round(performance.now() - ended),
        },
      ],
      "postgres",
    );

    const [readyz, ...answers] = await Promise.all([
      timed("GET /readyz", () => anonymous.get("/readyz")),
      ...postgresRoutes(unusedKeys.shift()!),
    ]);
    expectUnavailable(answers, "postgres");
    expectReadyz(readyz, { postgres: "unreachable", redis: "ok", models: "ok" });
    expect((await anonymous.get("/healthz")).status).toBe(200);
    expect(logs.some((l) => l.level === 40 && l.dependency === "postgres")).toBe(true);
    expectAlive();

    await cluster.start();
    await expectRecovered();
    // The result write that the stop cut off is retried, and lands.
    await sleepUntil(async () => (await alpha.get(`/v1/jobs/${held.body.id}?wait=2`)).body.status === "succeeded", {
      timeoutMs: 30_000,
      message: "the job whose result write was cut off completes",
    });
    expectAlive();
  }, 60_000);

  it("frozen (SIGSTOP: connections accept, nothing answers): 503 in time, and served again once it thaws", async () => {
    await cluster.pause();
    try {
      // A deadline of its own, so that requests that hang (the fault this looks for) still leave
      // time to thaw the server in `finally`.
      const [readyz, ...answers] = await withDeadline(
        Promise.all([timed("GET /readyz", () => anonymous.get("/readyz")), ...postgresRoutes(unusedKeys.shift()!)]),
        10_000,
      );
      expectUnavailable(answers, "postgres");
      expectReadyz(readyz, { postgres: "timeout", redis: "ok" });
    } finally {
      await cluster.resume();
    }
    await expectRecovered();
    expectAlive();
  }, 60_000);
});

describe("Redis outages", () => {
  it("frozen (SIGSTOP): routes that need Redis answer 503 at the command timeout, submits are accepted, and all serves again once it thaws", async () => {
    redisServer.pause();
    let frozenJobId = "";
    try {
      const [readyz, redeliver, job] = await withDeadline(
        Promise.all([
          timed("GET /readyz", () => anonymous.get("/readyz")),
          timed("POST /v1/jobs/:id/webhooks/redeliver", () => alpha.post(`/v1/jobs/${hookedJobId}/webhooks/redeliver`)),
          timed("POST /v1/jobs", () => alpha.post("/v1/jobs", irisJob([IRIS_SAMPLES.versicolor]))),
        ]),
        10_000,
      );
      expectReadyz(readyz, { redis: "timeout", postgres: "ok" });
      expectUnavailable([redeliver], "redis");
      (measured[`redis frozen ${job.name}`] ??= []).push(job.ms);
      expect(job.res.status, job.res.text).toBe(202);
      expect(job.ms).toBeLessThan(BOUND_MS);
      frozenJobId = job.res.body.id;
    } finally {
      redisServer.resume();
    }
    await sleepUntil(async () => (await anonymous.get("/readyz")).status === 200, {
      timeoutMs: 10_000,
      message: "readyz answers 200 again",
    });
    await sleepUntil(async () => (await alpha.get(`/v1/jobs/${frozenJobId}?wait=2`)).body.status === "succeeded", {
      timeoutMs: 30_000,
      message: "the job accepted while Redis was frozen completes",
    });
    expectAlive();
  }, 60_000);

  it("killed: routes that need Redis answer 503, submits are still accepted; restarted empty, the reconciler runs what was accepted", async () => {
    await redisServer.kill();
    const [readyz, redeliver, job, batch, read] = await Promise.all([
      timed("GET /readyz", () => anonymous.get("/readyz")),
      timed("POST /v1/jobs/:id/webhooks/redeliver", () => alpha.post(`/v1/jobs/${hookedJobId}/webhooks/redeliver`)),
      timed("POST /v1/jobs", () => alpha.post("/v1/jobs", irisJob([IRIS_SAMPLES.virginica]))),
      timed("POST /v1/batches", () =>
        alpha.post("/v1/batches", {
          model: "iris",
          items: [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }, { inputs: [irisInput([IRIS_SAMPLES.virginica])] }],
        }),
      ),
      timed("GET /v1/jobs/:id", () => alpha.get(`/v1/jobs/${jobId}`)),
    ]);
    expectReadyz(readyz, { redis: "unreachable", postgres: "ok" });
    expectUnavailable([redeliver], "redis");
    // PostgreSQL is the record: a submit is accepted (and its queue entry made later by the
    // workers' reconciler), as a batch is; reads need only PostgreSQL.
    for (const accepted of [job, batch]) {
      (measured[`redis ${accepted.name}`] ??= []).push(accepted.ms);
      expect(accepted.res.status, accepted.res.text).toBe(202);
      expect(accepted.ms).toBeLessThan(BOUND_MS);
    }
    expect(read.res.status).toBe(200);
    expectAlive();

    await redisServer.start();
    await sleepUntil(async () => (await anonymous.get("/readyz")).status === 200, {
      timeoutMs: 20_000,
      message: "readyz answers 200 again",
    });
    await sleepUntil(async () => (await alpha.get(`/v1/jobs/${job.res.body.id}?wait=2`)).body.status === "succeeded", {
      timeoutMs: 30_000,
      message: "the job accepted during the outage completes",
    });
    await sleepUntil(
      async () => (await alpha.get(`/v1/batches/${batch.res.body.id}?wait=2`)).body.status === "completed",
      {
        timeoutMs: 30_000,
        message: "the batch accepted during the outage completes",
      },
    );
    expect((await alpha.post(`/v1/jobs/${hookedJobId}/webhooks/redeliver`)).status).toBe(202);
    expectAlive();
    console.log("answer times while a dependency was down (ms):", JSON.stringify(measured));
  }, 60_000);
});
