import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchItemId } from "@inferline/contracts";
import { Database, TenantStore } from "@inferline/db";
import { createRedis, Dispatcher } from "@inferline/queue";
import { IRIS_SAMPLES, irisInput, irisJob, sleepUntil, testRedisUrl, type ApiClient } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Work that ends without running (canceled, expired) stops counting at once, wherever queued work
// is counted: the tenant's quota, MAX_QUEUE_DEPTH, GET /v1/models/:name/queue and the queued
// gauge. No worker serves iris here, so nothing but the ending itself can take it off.
const QUOTA = 4;
const DEPTH = 6;

let stack: TestStack;
let admin: Database;
let tenants: TenantStore;
beforeAll(async () => {
  stack = await startStack({
    worker: false,
    api: { DEFAULT_TENANT_MAX_QUEUED: String(QUOTA), MAX_QUEUE_DEPTH: String(DEPTH) },
  });
  admin = new Database(stack.db.url, { poolSize: 1 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await admin?.close();
  await stack?.close();
});

async function tenant(name: string): Promise<ApiClient> {
  return stack.alpha.withKey((await tenants.createKey(name)).key);
}

/** Queued work that runs on its own (no cache, so no single flight puts one behind another). */
const job = (extra: Record<string, unknown> = {}) => irisJob([IRIS_SAMPLES.setosa], { cache: "off", ...extra });

async function submit(client: ApiClient, body: unknown, headers?: Record<string, string>): Promise<string> {
  const res = await client.post("/v1/jobs", body, headers);
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function queueStatus(client: ApiClient): Promise<{ tenant: { queued: number; running: number }; depth: number }> {
  const res = await client.get("/v1/models/iris/queue");
  expect(res.status).toBe(200);
  return res.body;
}

/** The API's queued gauge for iris: single jobs and batch items. */
async function queuedGauge(): Promise<{ job: number; item: number }> {
  const text = await (await fetch(`${stack.api.url}/metrics`)).text();
  const value = (kind: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith(`inferline_queue_queued{model="iris",kind="${kind}"} `))
        ?.split(" ")[1] ?? NaN,
    );
  return { job: value("job"), item: value("batch_item") };
}

/** Waits (each reading of the API is up to a second old) until `read` answers what `want` accepts. */
function until<T>(read: () => Promise<T>, want: (value: T) => boolean, message: string): Promise<T> {
  return sleepUntil(
    async () => {
      const value = await read();
      return want(value) ? value : undefined;
    },
    { timeoutMs: 5000, message },
  );
}

/** Submits until the API has re-read the tenant's queued work and admits the job (a refused submit stores nothing). */
async function admitted(client: ApiClient, body: unknown): Promise<void> {
  await until(
    () => client.post("/v1/jobs", body),
    (res) => res.status === 202,
    "still refused",
  );
}

describe("queued work that ends without running", () => {
  it("a canceled job or batch item of a model no worker serves frees its tenant's quota, the model's depth, the queue route and the gauge at once; its emptied entries leave the queue", async () => {
    const [a, b, c] = [await tenant("cancel-a"), await tenant("cancel-b"), await tenant("cancel-c")];
    const batch = await a.post("/v1/batches", {
      model: "iris",
      items: [IRIS_SAMPLES.setosa, IRIS_SAMPLES.versicolor, IRIS_SAMPLES.virginica].map((r) => ({
        inputs: [irisInput([r])],
      })),
    });
    expect(batch.status).toBe(202);
    const jobId = await submit(a, job());
    // a is at its quota; then the model at its depth.
    expect((await a.post("/v1/jobs", job())).body.code).toBe("quota_exceeded");
    await submit(b, job());
    await submit(b, job());
    expect((await c.post("/v1/jobs", job())).body.code).toBe("queue_full");
    await until(
      () => queueStatus(a),
      (s) => s.depth === DEPTH,
      "the depth never showed every submit",
    );

    expect((await a.post(`/v1/jobs/${jobId}/cancel`)).status).toBe(200);
    expect((await a.post(`/v1/jobs/${batchItemId(batch.body.id, 1)}/cancel`)).status).toBe(200);

    const status = await until(
      () => queueStatus(a),
      (s) => s.depth === DEPTH - 2,
      "the canceled work still counts in the depth",
    );
    expect(status.tenant).toEqual({ queued: QUOTA - 2, running: 0, caps: [] });
    expect(await until(queuedGauge, (g) => g.job === 2, "the gauge still counts the canceled job")).toEqual({
      job: 2,
      item: 2,
    });
    // a may queue again, and the model has room for c.
    await admitted(a, job());
    expect((await c.post("/v1/jobs", job())).status).toBe(202);
    expect((await c.post("/v1/jobs", job())).body.code).toBe("queue_full");

    // Everything canceled: no entry's row is left, nor (best effort, none was taken) its queue entry.
    const { rows } = await admin.pool.query<{ id: string }>(`select id from jobs where status = 'queued'`);
    for (const { id } of rows) await cancelAny(id);
    expect((await a.post(`/v1/batches/${batch.body.id}/cancel`)).status).toBe(200);
    await until(
      () => queueStatus(a),
      (s) => s.depth === 0,
      "canceled work still counts",
    );
    expect((await admin.pool.query(`select count(*)::int as n from dispatches`)).rows[0].n).toBe(0);
    expect(await waitingEntries()).toBe(0);
  });

  it("jobs that expire (maxQueueSeconds) or are canceled at their Cancel-After time by the deadline sweep stop counting as they end", async () => {
    const d = await tenant("expire-d");
    // A worker that serves another model: its deadline sweep ends iris work too.
    await stack.startWorker({ WORKER_MODELS: "lookup", DEADLINE_SWEEP_INTERVAL_MS: "100" });
    try {
      const ids = [
        await submit(d, job({ maxQueueSeconds: 1 })),
        await submit(d, job({ maxQueueSeconds: 1 })),
        await submit(d, job(), { "cancel-after": "1s" }),
      ];
      const batch = await d.post("/v1/batches", {
        model: "iris",
        maxQueueSeconds: 1,
        items: [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }],
      });
      expect(batch.status).toBe(202);
      expect((await d.post("/v1/jobs", job())).body.code).toBe("quota_exceeded");

      const ended = await until(
        () => Promise.all(ids.map(async (id) => (await d.get(`/v1/jobs/${id}`)).body.status as string)),
        (s) => s.every((x) => x !== "queued"),
        "the jobs never ended",
      );
      expect(ended).toEqual(["expired", "expired", "canceled"]);
      // The tenant's part is read each time; the model's may be a second old.
      const nothingCounted = (s: Awaited<ReturnType<typeof queueStatus>>) =>
        s.tenant.queued === 0 && s.tenant.running === 0 && s.depth === 0;
      await until(() => queueStatus(d), nothingCounted, "the ended work still counts");
      await admitted(d, job());
      expect(await waitingEntries()).toBe(1);
    } finally {
      await stack.stopWorker();
    }
  });
});

/** Cancels a job as its owner would; the test does not know which tenant's it is, so it asks each. */
async function cancelAny(id: string): Promise<void> {
  const { rows } = await admin.pool.query<{ name: string }>(
    `select t.name from jobs j join tenants t on t.id = j."tenantId" where j.id = $1`,
    [id],
  );
  const owner = await tenant(rows[0]!.name);
  expect((await owner.post(`/v1/jobs/${id}/cancel`)).status).toBe(200);
}

/** Entries waiting on iris's queue (none is taken: no worker serves it). */
async function waitingEntries(): Promise<number> {
  const redis = createRedis(testRedisUrl());
  const dispatcher = new Dispatcher(redis, { prefix: stack.prefix });
  try {
    const counts = await dispatcher.queue("iris", "1").getJobCounts("wait", "prioritized", "delayed");
    return Object.values(counts).reduce((n, c) => n + c, 0);
  } finally {
    await dispatcher.close();
    redis.disconnect();
  }
}
