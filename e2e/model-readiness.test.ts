import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { Database, TenantStore } from "@inferline/db";
import { inferQueueName } from "@inferline/queue";
import {
  ApiClient,
  createTestDatabase,
  deletePrefix,
  IRIS_SAMPLES,
  irisJob,
  sleepUntil,
  testRedisUrl,
  uniquePrefix,
  type TestDatabase,
} from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";

// A repository with iris and two models that cannot load: `broken` (iris's file under a manifest
// whose input is named wrong: onnxruntime's "input 'features' is missing in 'feeds'" at warm-up)
// and `corrupt` (a file that is no ONNX model). The worker must serve iris and report the others.

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
let dir: string;
let db: TestDatabase;
let prefix: string;
let api: RunningApi;
let worker: RunningWorker | undefined;
let client: ApiClient;
let anonymous: ApiClient;
let workerEnv: Record<string, string>;

function writeModel(name: string, manifest: Record<string, unknown>, file: Buffer): void {
  fs.mkdirSync(path.join(dir, name));
  fs.writeFileSync(path.join(dir, name, "model.onnx"), file);
  fs.writeFileSync(
    path.join(dir, name, "model.json"),
    JSON.stringify({ name, versions: [{ version: "1", file: "model.onnx" }], ...manifest }),
  );
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-readiness-"));
  const {
    name: _name,
    versions: _versions,
    ...iris
  } = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODELS_DIR, "iris", "model.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const irisFile = fs.readFileSync(path.join(DEFAULT_MODELS_DIR, "iris", "iris.onnx"));
  writeModel("iris", iris, irisFile);
  writeModel(
    "broken",
    {
      inputs: [{ name: "foo", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
    },
    irisFile,
  );
  writeModel(
    "corrupt",
    {
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 1] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 1] }],
    },
    Buffer.from("not an onnx model"),
  );

  db = await createTestDatabase();
  prefix = uniquePrefix();
  const shared = {
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: "silent",
    MODELS_DIR: dir,
  };
  api = await startApi(loadApiEnv({ ...shared, PORT: "0", HOST: "127.0.0.1" }), logger);
  workerEnv = {
    ...shared,
    METRICS_PORT: "0",
    RECONCILE_INTERVAL_MS: "0",
    WEBHOOK_SWEEP_INTERVAL_MS: "0",
    MODEL_HEARTBEAT_MS: "200",
  };
  worker = await startWorker(loadWorkerEnv(workerEnv), logger);
  const admin = new Database(db.url, { poolSize: 1 });
  client = new ApiClient(api.url, (await new TenantStore(admin.pool, admin.prisma).createKey("readiness")).key);
  await admin.close();
  anonymous = new ApiClient(api.url);
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await db?.drop();
  await deletePrefix(prefix);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("a worker whose models partly fail to load", () => {
  it("serves iris, reports the others unready (v2 ready, /readyz, the metric) and consumes only iris's queue", async () => {
    expect(worker!.models).toEqual(["iris"]);

    expect((await client.get("/v2/models/iris/ready")).body).toEqual({ name: "iris", ready: true });
    const broken = await client.get("/v2/models/broken/ready");
    expect(broken.status).toBe(503);
    expect(broken.body).toMatchObject({
      name: "broken",
      ready: false,
      state: "failed",
      versions: { "1": { state: "failed", readyWorkers: 0, failedWorkers: 1, codes: ["warmup_failed"] } },
    });
    expect((await client.get("/v2/models/corrupt/versions/1/ready")).body).toMatchObject({
      name: "corrupt",
      version: "1",
      ready: false,
      state: "failed",
    });

    const readyz = await anonymous.get("/readyz");
    expect(readyz.status).toBe(200); // the API serves every other model: not unready for one
    expect(readyz.body.checks).toEqual({ postgres: "ok", redis: "ok", models: "ok" });
    expect(readyz.body.models.iris).toEqual({
      state: "ready",
      versions: { "1": { state: "ready", readyWorkers: 1, failedWorkers: 0 } },
    });
    expect(readyz.body.models.broken).toMatchObject({
      state: "failed",
      versions: { "1": { codes: ["warmup_failed"] } },
    });
    expect(readyz.body.models.corrupt).toMatchObject({
      state: "failed",
      versions: { "1": { codes: ["load_failed"] } },
    });
    // Failure messages name files: they stay in the worker's log, never on an unauthenticated route.
    expect(readyz.text).not.toContain(dir);

    const metrics = await worker!.metrics.registry.metrics();
    expect(metrics).toContain('inferline_model_ready{model="iris",version="1"} 1');
    expect(metrics).toContain('inferline_model_ready{model="broken",version="1"} 0');
    expect(metrics).toContain('inferline_model_ready{model="corrupt",version="1"} 0');

    // No BullMQ Worker listens on the broken models' queues.
    const connection = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
    try {
      const workersOf = async (model: string) => {
        const queue = new Queue(inferQueueName(model, "1"), { connection, prefix });
        try {
          return (await queue.getWorkers()).length;
        } finally {
          await queue.close();
        }
      };
      expect(await workersOf("iris")).toBeGreaterThan(0);
      expect(await workersOf("broken")).toBe(0);
      expect(await workersOf("corrupt")).toBe(0);
    } finally {
      connection.disconnect();
    }
  });

  it("answers 503 model_unavailable for work on a model no worker can serve, while iris jobs succeed", async () => {
    const inputs = [{ name: "foo", datatype: "FP32", shape: [1, 4], data: IRIS_SAMPLES.setosa }];
    const job = await client.post("/v1/jobs", { model: "broken", inputs });
    expect(job.status).toBe(503);
    expect(job.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(job.headers.get("retry-after")).toBe("30");
    expect(job.body).toMatchObject({ status: 503, code: "model_unavailable" });
    expect(job.body.detail).toContain("broken@1");
    expect(job.body.detail).toContain("warmup_failed");

    const batch = await client.post("/v1/batches", { model: "broken", items: [{ inputs }] });
    expect(batch.status).toBe(503);
    expect(batch.body.code).toBe("model_unavailable");
    const infer = await client.post("/v2/models/broken/infer", { inputs });
    expect(infer.status).toBe(503);
    expect(infer.body.code).toBe("model_unavailable");
    // Nothing was stored for them.
    expect((await client.get("/v1/jobs?model=broken")).body.jobs).toEqual([]);

    const iris = await client.post("/v1/jobs", irisJob([IRIS_SAMPLES.virginica]));
    expect(iris.status).toBe(202);
    const done = await client.get(`/v1/jobs/${iris.body.id}?wait=10`);
    expect(done.body.status).toBe("succeeded");
    expect(done.body.result.classifications[0].label).toBe("virginica");
    const irisBatch = await client.post("/v1/batches", {
      model: "iris",
      items: [{ inputs: irisJob([IRIS_SAMPLES.setosa]).inputs }],
    });
    expect(irisBatch.status).toBe(202);
    expect((await client.get(`/v1/batches/${irisBatch.body.id}?wait=10`)).body.counts.succeeded).toBe(1);
  });

  it("accepts work for a model no live worker reported (workers may start later), and refuses it again once one reports it failed", async () => {
    await worker!.close(); // withdraws its reports
    worker = undefined;
    const gone = await client.get("/v2/models/broken/ready");
    expect(gone.status).toBe(503);
    expect(gone.body.state).toBe("unknown");
    const inputs = [{ name: "foo", datatype: "FP32", shape: [1, 4], data: IRIS_SAMPLES.setosa }];
    // The ready read above refreshed what submits see: no report at all is no reason to refuse.
    const queued = await client.post("/v1/jobs", { model: "broken", inputs });
    expect(queued.status).toBe(202);

    worker = await startWorker(loadWorkerEnv(workerEnv), logger);
    await sleepUntil(async () => (await client.get("/v2/models/broken/ready")).body.state === "failed", {
      timeoutMs: 10_000,
      message: "the restarted worker reports broken failed",
    });
    expect((await client.post("/v1/jobs", { model: "broken", inputs })).status).toBe(503);
    // The job accepted meanwhile waits in its queue: no worker claims it.
    expect((await client.get(`/v1/jobs/${queued.body.id}`)).body.status).toBe("queued");
  });

  it("forgets a worker that died without withdrawing its reports once they expire", async () => {
    // Stand-in for a SIGKILLed worker: a report with a short TTL that nobody renews.
    const redis = new Redis(testRedisUrl());
    try {
      const report = { worker: "dead-host:1:deadbeef", model: "iris", versions: [{ version: "1", ready: true }] };
      await redis.set(`${prefix}:model-readiness:iris:${report.worker}`, JSON.stringify(report), "PX", 300);
      await redis.sadd(`${prefix}:model-readiness:iris`, report.worker);
      expect((await anonymous.get("/readyz")).body.models.iris.versions["1"].readyWorkers).toBe(2);
      await sleepUntil(async () => (await anonymous.get("/readyz")).body.models.iris.versions["1"].readyWorkers === 1, {
        timeoutMs: 5000,
        message: "the dead worker's report expires",
      });
      await sleepUntil(async () => !(await redis.smembers(`${prefix}:model-readiness:iris`)).includes(report.worker), {
        timeoutMs: 5000,
        message: "the reader prunes it from the set",
      });
    } finally {
      redis.disconnect();
    }
  });
});
