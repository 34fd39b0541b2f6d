import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { ApiClient, FIXTURE_ADAPTERS_MODULE, irisJob, sleepUntil } from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";
import { loadApiEnv, startApi } from "@inferline/api";
import { startStack, testLogger, type TestStack } from "./support/stack.ts";

// Deadlines end to end: maxQueueSeconds (a job's, a batch's, a manifest's, the operator's
// default) expires work not started in time, whether a worker's claim or the deadline sweep gets
// to it first; Cancel-After cancels work still not terminal at its time, running or not. Work
// waits by being sent to a model that no running worker serves.

/** Webhook bodies, as a loopback receiver got them. */
class Receiver {
  readonly bodies: Array<{ path: string; body: { type: string; data: Record<string, any> } }> = [];
  private readonly server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString("utf8")));
    req.on("end", () => {
      this.bodies.push({ path: req.url ?? "/", body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The events delivered to `path`, once there are `count` of them. */
  async events(path: string, count = 1) {
    const got = () => this.bodies.filter((b) => b.path === path).map((b) => b.body);
    return sleepUntil(() => (got().length >= count ? got() : undefined), { message: `${count} webhook(s) at ${path}` });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let stack: TestStack;
let receiver: Receiver;
let db: Database;
const WORKER = {
  WEBHOOK_ALLOW_PRIVATE: "true",
  INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE,
  DEADLINE_SWEEP_INTERVAL_MS: "100",
};

beforeAll(async () => {
  receiver = await new Receiver().start();
  stack = await startStack({
    worker: false,
    faultModels: true,
    api: { WEBHOOK_ALLOW_PRIVATE: "true" },
    workerEnv: WORKER,
  });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await receiver?.close();
});

const lookupInput = (index: number) => [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }];
const hook = (name: string) => ({ url: `${receiver.url}/${name}` });

/** Resolves once `seconds` have passed since `createdAt` (an ISO time): the deadline is behind us. */
const passed = (createdAt: string, seconds: number) =>
  sleepUntil(() => Date.now() > Date.parse(createdAt) + seconds * 1000 + 20, { timeoutMs: seconds * 1000 + 5000 });

/** The job once `until` holds for it (long-polling, so a finished notification wakes the wait). */
async function jobWhen(client: ApiClient, id: string, until: (job: any) => boolean): Promise<any> {
  return sleepUntil(
    async () => {
      const job = (await client.get(`/v1/jobs/${id}?wait=5`)).body;
      return until(job) ? job : undefined;
    },
    { timeoutMs: 20_000, message: `job ${id}` },
  );
}

async function batchWhenDone(id: string): Promise<any> {
  return sleepUntil(
    async () => {
      const batch = (await stack.alpha.get(`/v1/batches/${id}?wait=5`)).body;
      return batch.status === "completed" || batch.status === "canceled" ? batch : undefined;
    },
    { timeoutMs: 20_000, message: `batch ${id}` },
  );
}

/** Resolves once the job's queue entry was processed by a worker (its dispatch row is gone). */
async function entryProcessed(jobId: string): Promise<void> {
  const { rows } = await db.pool.query<{ dispatchId: string }>(`select "dispatchId" from jobs where id = $1`, [jobId]);
  await sleepUntil(
    async () => (await db.pool.query(`select 1 from dispatches where id = $1`, [rows[0]!.dispatchId])).rowCount === 0,
    {
      timeoutMs: 20_000,
      message: "the entry was processed",
    },
  );
}

async function resultLines(batchId: string): Promise<any[]> {
  return (await stack.alpha.get(`/v1/batches/${batchId}/results`)).text
    .trim()
    .split("\n")
    .map((l: string) => JSON.parse(l));
}

/** A worker of this test's own, beside the stack's. */
async function extraWorker(env: Record<string, string>): Promise<RunningWorker> {
  return startWorker(loadWorkerEnv({ ...stack.workerEnv, ...env }), testLogger);
}

describe("with the deadline sweep off, a claim checks the queue deadline", () => {
  it("expires a job and a batch's items whose deadline passed while they waited; none of them runs", async () => {
    const job = (
      await stack.alpha.post("/v1/jobs", irisJob(undefined, { maxQueueSeconds: 1, webhook: hook("claim-job") }))
    ).body;
    const batch = (
      await stack.alpha.post("/v1/batches", {
        model: "iris",
        maxQueueSeconds: 1,
        webhook: hook("claim-batch"),
        items: [{ inputs: irisJob().inputs }, { inputs: irisJob().inputs }],
      })
    ).body;
    await passed(batch.createdAt, 1);
    const worker = await extraWorker({ WORKER_MODELS: "iris", DEADLINE_SWEEP_INTERVAL_MS: "0" });
    try {
      const expired = await jobWhen(stack.alpha, job.id, (j) => j.status !== "queued");
      expect(expired).toMatchObject({ status: "expired", attempts: 0, error: { code: "deadline_exceeded" } });
      expect(expired.startedAt).toBeUndefined();
      expect(expired.error.message).toContain("1 s");
      const [event] = await receiver.events("/claim-job");
      expect(event).toMatchObject({ type: "job.expired", data: { id: job.id, status: "expired" } });

      const done = await batchWhenDone(batch.id);
      expect(done).toMatchObject({ status: "completed", counts: { queued: 0, running: 0, succeeded: 0, expired: 2 } });
      expect((await resultLines(batch.id)).map((l) => [l.status, l.error?.code])).toEqual([
        ["expired", "deadline_exceeded"],
        ["expired", "deadline_exceeded"],
      ]);
      const [completed] = await receiver.events("/claim-batch");
      expect(completed).toMatchObject({ type: "batch.completed", data: { id: batch.id, counts: { expired: 2 } } });
    } finally {
      await worker.close();
    }
  }, 60_000);
});

describe("with the deadline sweep on", () => {
  // A worker for another model: it sweeps, but never claims the iris work these tests send.
  beforeAll(async () => {
    await stack.startWorker({ WORKER_MODELS: "lookup" });
  });
  afterAll(async () => {
    await stack.stopWorker();
  });

  it("expires a job that no worker takes in time, with a job.expired webhook; a worker that starts later never runs it", async () => {
    const job = (
      await stack.alpha.post("/v1/jobs", irisJob(undefined, { maxQueueSeconds: 1, webhook: hook("sweep-job") }))
    ).body;
    const expired = await jobWhen(stack.alpha, job.id, (j) => j.status !== "queued");
    expect(expired).toMatchObject({ status: "expired", attempts: 0, error: { code: "deadline_exceeded" } });
    const [event] = await receiver.events("/sweep-job");
    expect(event).toMatchObject({
      type: "job.expired",
      data: { id: job.id, status: "expired", error: { code: "deadline_exceeded" } },
    });

    const worker = await extraWorker({ WORKER_MODELS: "iris", DEADLINE_SWEEP_INTERVAL_MS: "0" });
    try {
      await entryProcessed(job.id);
    } finally {
      await worker.close();
    }
    expect((await stack.alpha.get(`/v1/jobs/${job.id}`)).body).toMatchObject({ status: "expired", attempts: 0 });
    expect(await receiver.events("/sweep-job")).toHaveLength(1);
  }, 60_000);

  it("expires a batch's unstarted items (JSON body or NDJSON with ?maxQueueSeconds) and completes it once, with counts.expired", async () => {
    const items = [0, 1, 2].map(() => ({ inputs: irisJob().inputs }));
    const json = (
      await stack.alpha.post("/v1/batches", { model: "iris", maxQueueSeconds: 1, webhook: hook("sweep-batch"), items })
    ).body;
    const ndjson = await stack.alpha.request("POST", "/v1/batches?model=iris&maxQueueSeconds=1", {
      body: items.map((i) => JSON.stringify(i)).join("\n"),
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(ndjson.status).toBe(202);
    for (const id of [json.id, ndjson.body.id]) {
      const done = await batchWhenDone(id);
      expect(done).toMatchObject({
        status: "completed",
        total: 3,
        counts: { queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0, expired: 3 },
      });
      expect((await resultLines(id)).every((l) => l.status === "expired" && l.error.code === "deadline_exceeded")).toBe(
        true,
      );
    }
    const [completed] = await receiver.events("/sweep-batch");
    expect(completed).toMatchObject({
      type: "batch.completed",
      data: { id: json.id, status: "completed", counts: { expired: 3 } },
    });
    // One batch.completed: the event's id is derived from the batch, and the batch completes once.
    const { rows } = await db.pool.query(`select count(*)::int as n from webhook_events where "batchId" = $1`, [
      json.id,
    ]);
    expect(rows[0].n).toBe(1);
  }, 60_000);

  it("Cancel-After cancels a job and a batch still queued at their time (job.canceled, a canceled batch)", async () => {
    const job = await stack.alpha.post("/v1/jobs", irisJob(undefined, { webhook: hook("cancel-queued") }), {
      "cancel-after": "1s",
    });
    expect(job.status).toBe(202);
    const batch = await stack.alpha.post(
      "/v1/batches",
      { model: "iris", items: [{ inputs: irisJob().inputs }] },
      { "cancel-after": "1" },
    );
    expect(batch.status).toBe(202);

    const canceled = await jobWhen(stack.alpha, job.body.id, (j) => j.status !== "queued");
    expect(canceled).toMatchObject({ status: "canceled", attempts: 0 });
    const [event] = await receiver.events("/cancel-queued");
    expect(event).toMatchObject({ type: "job.canceled", data: { id: job.body.id, status: "canceled" } });
    expect(await batchWhenDone(batch.body.id)).toMatchObject({
      status: "canceled",
      counts: { canceled: 1, queued: 0 },
    });
  }, 60_000);
});

describe("Cancel-After on a running job", () => {
  beforeAll(async () => {
    await stack.startWorker({ WORKER_MODELS: "slow", WORKER_CONCURRENCY: "1" });
  });
  afterAll(async () => {
    await stack.stopWorker();
  });

  it("cancels it at its time; the run's late result then changes nothing", async () => {
    // Index 2 takes the `slow` model about 1.5 s: the job is running when its Cancel-After passes.
    const submitted = await stack.alpha.post(
      "/v1/jobs",
      { model: "slow", inputs: lookupInput(2), webhook: hook("cancel-running") },
      { "cancel-after": "1s" },
    );
    expect(submitted.status).toBe(202);
    await jobWhen(stack.alpha, submitted.body.id, (j) => j.status !== "queued");
    const canceled = await jobWhen(stack.alpha, submitted.body.id, (j) => j.status !== "running");
    expect(canceled).toMatchObject({ status: "canceled", attempts: 1 });
    expect(canceled.startedAt).toBeDefined();
    const [event] = await receiver.events("/cancel-running");
    expect(event).toMatchObject({ type: "job.canceled", data: { id: submitted.body.id, status: "canceled" } });

    await entryProcessed(submitted.body.id);
    const after = (await stack.alpha.get(`/v1/jobs/${submitted.body.id}`)).body;
    expect(after).toMatchObject({ status: "canceled" });
    expect(after.result).toBeUndefined();
    expect(await receiver.events("/cancel-running")).toHaveLength(1);
  }, 60_000);
});

describe("defaults and bad values", () => {
  const deadlineOf = async (table: "jobs" | "batches", id: string) => {
    const { rows } = await db.pool.query<{ seconds: number | null }>(
      `select extract(epoch from "queueDeadline" - "createdAt")::float as seconds from ${table} where id = $1`,
      [id],
    );
    return rows[0]?.seconds;
  };

  it("takes the job's maxQueueSeconds, else the manifest's, else DEFAULT_MAX_QUEUE_SECONDS, else none", async () => {
    // A model whose manifest sets a default: the lookup model under another name.
    const dir = path.join(stack.modelsDir, "lookup-deadline");
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(stack.modelsDir, "lookup", "lookup.onnx"), path.join(dir, "lookup.onnx"));
    const manifest = JSON.parse(fs.readFileSync(path.join(stack.modelsDir, "lookup", "model.json"), "utf8"));
    fs.writeFileSync(
      path.join(dir, "model.json"),
      JSON.stringify({ ...manifest, name: "lookup-deadline", maxQueueSeconds: 120 }),
    );
    const api = await startApi(loadApiEnv({ ...stack.apiEnv, DEFAULT_MAX_QUEUE_SECONDS: "600" }), testLogger);
    try {
      const client = new ApiClient(api.url, stack.alpha.apiKey);
      const submit = async (body: Record<string, unknown>, c = client) =>
        (await c.post("/v1/jobs", body)).body.id as string;
      expect(
        await deadlineOf(
          "jobs",
          await submit({ model: "lookup-deadline", inputs: lookupInput(0), maxQueueSeconds: 5 }),
        ),
      ).toBe(5);
      expect(await deadlineOf("jobs", await submit({ model: "lookup-deadline", inputs: lookupInput(0) }))).toBe(120);
      expect(await deadlineOf("jobs", await submit(irisJob()))).toBe(600);
      // The stack's own API has no DEFAULT_MAX_QUEUE_SECONDS.
      expect(await deadlineOf("jobs", await submit(irisJob(), stack.alpha))).toBeNull();

      const batch = await client.post("/v1/batches", { model: "lookup-deadline", items: [{ inputs: lookupInput(0) }] });
      expect(await deadlineOf("batches", batch.body.id)).toBe(120);
      const ndjson = await client.request("POST", "/v1/batches?model=iris&maxQueueSeconds=7", {
        body: JSON.stringify({ inputs: irisJob().inputs }),
        headers: { "content-type": "application/x-ndjson" },
      });
      expect(await deadlineOf("batches", ndjson.body.id)).toBe(7);
      expect(
        await deadlineOf(
          "batches",
          (await client.post("/v1/batches", { model: "iris", items: [{ inputs: irisJob().inputs }] })).body.id,
        ),
      ).toBe(600);
    } finally {
      await api.close();
    }
  });

  it("refuses maxQueueSeconds out of bounds (422 naming the field)", async () => {
    for (const maxQueueSeconds of [0, 259_201, 1.5]) {
      const res = await stack.alpha.post("/v1/jobs", irisJob(undefined, { maxQueueSeconds }));
      expect(res.status).toBe(422);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(["/maxQueueSeconds"]);
    }
    const ndjson = await stack.alpha.request("POST", "/v1/batches?model=iris&maxQueueSeconds=soon", {
      body: JSON.stringify({ inputs: irisJob().inputs }),
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(ndjson.status).toBe(422);
    expect(ndjson.body.errors.map((e: { path: string }) => e.path)).toEqual(["/query/maxQueueSeconds"]);
  });

  it("refuses a bad Cancel-After with a 400 naming the header, creating nothing", async () => {
    const before = (await stack.alpha.get("/v1/jobs?limit=500")).body.jobs.length;
    for (const value of ["soon", "0", "0s", "4d", "259201", "1m1h", "-5s", "1.5h"]) {
      const res = await stack.alpha.post("/v1/jobs", irisJob(), { "cancel-after": value });
      expect(res.status, value).toBe(400);
      expect(res.body).toMatchObject({ code: "invalid_cancel_after", errors: [{ path: "/headers/cancel-after" }] });
      expect(res.body.detail).toContain("Cancel-After");
    }
    const batch = await stack.alpha.post(
      "/v1/batches",
      { model: "iris", items: [{ inputs: irisJob().inputs }] },
      { "cancel-after": "later" },
    );
    expect(batch.status).toBe(400);
    expect(batch.body.code).toBe("invalid_cancel_after");
    const v2 = await stack.alpha.request("POST", "/v2/models/iris/infer", {
      json: { inputs: irisJob().inputs },
      headers: { "cancel-after": "never" },
    });
    expect(v2.status).toBe(400);
    expect(v2.body.error).toContain("Cancel-After");
    expect((await stack.alpha.get("/v1/jobs?limit=500")).body.jobs.length).toBe(before);
  });

  it("accepts every documented form of Cancel-After and stores the time", async () => {
    const cases: Array<[string, number]> = [
      ["90s", 90],
      ["5m", 300],
      ["1h", 3600],
      ["1h30m", 5400],
      ["45", 45],
      ["72h", 259_200],
    ];
    for (const [value, seconds] of cases) {
      const before = Date.now();
      const res = await stack.alpha.post("/v1/jobs", irisJob(), { "cancel-after": value });
      expect(res.status, value).toBe(202);
      const { rows } = await db.pool.query<{ cancelAt: Date }>(`select "cancelAt" from jobs where id = $1`, [
        res.body.id,
      ]);
      const at = rows[0]!.cancelAt.getTime();
      expect(at, value).toBeGreaterThanOrEqual(before + seconds * 1000);
      expect(at, value).toBeLessThanOrEqual(Date.now() + seconds * 1000);
    }
  });
});
