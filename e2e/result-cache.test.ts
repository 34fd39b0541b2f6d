import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import {
  deletePrefix,
  freePort,
  irisInput,
  LOOKUP_TABLE,
  LOOKUP_TABLE_V2,
  sleepUntil,
  type ApiClient,
} from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// The result cache of single jobs, end to end: API, Redis, worker and PostgreSQL.
// Every test sends inputs of its own (see uniqueRow), so that no test hits another's entry.

let stack: TestStack;
let db: Database;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await new Receiver().start();
  stack = await startStack({
    cachedModels: true,
    api: { WEBHOOK_ALLOW_PRIVATE: "true" },
    workerEnv: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_SWEEP_INTERVAL_MS: "0" },
  });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await receiver?.close();
});

let rowSeed = 0;
/** An iris row no other test sends. */
function uniqueRow(): number[] {
  rowSeed++;
  return [4 + rowSeed / 64, 3.25, 1.5, 0.25];
}

const iris = (row: number[], extra: Record<string, unknown> = {}) => ({
  model: "iris",
  inputs: [irisInput([row])],
  ...extra,
});
const lookup = (index: number, version = "1", extra: Record<string, unknown> = {}) => ({
  model: "lookup-cached",
  version,
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
  ...extra,
});

/** The worker's count of `inferline_cache_writes_total{outcome="stored"}` (0 without a worker). */
async function storedWrites(): Promise<number> {
  const metric = (await stack.worker?.metrics.registry.getMetricsAsJSON())?.find(
    (m) => m.name === "inferline_cache_writes_total",
  );
  return (metric?.values ?? []).filter((v) => v.labels.outcome === "stored").reduce((sum, v) => sum + v.value, 0);
}

/** Rows this worker ran through a model's session (`inferline_batch_size_items` sum), since it started. */
async function itemsRun(model: string): Promise<number> {
  const metric = (await stack.worker?.metrics.registry.getMetricsAsJSON())?.find(
    (m) => m.name === "inferline_batch_size_items",
  );
  return (metric?.values ?? [])
    .filter(
      (v) => (v as { metricName?: string }).metricName === "inferline_batch_size_items_sum" && v.labels.model === model,
    )
    .reduce((sum, v) => sum + v.value, 0);
}

/** The API's `inferline_cache_lookups_total` for a model and outcome. */
async function lookups(model: string, outcome: string): Promise<number> {
  const text = (await stack.anonymous.get("/metrics")).text;
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`inferline_cache_lookups_total{model="${model}",outcome="${outcome}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** Submits, waits for the job to end, and for the worker to have stored its result in the cache. */
async function runAndStore(client: ApiClient, body: unknown): Promise<Record<string, any>> {
  const before = await storedWrites();
  const submit = await client.post("/v1/jobs", body);
  expect(submit.status).toBe(202);
  const done = await client.get(`/v1/jobs/${submit.body.id}?wait=10`);
  expect(done.body.status).toBe("succeeded");
  await sleepUntil(async () => (await storedWrites()) > before, { message: "the worker stored no result" });
  return done.body;
}

/** The job each of `ids` waits on (its single-flight leader), in order; null for a job that waits on none. */
async function leadersOf(ids: string[]): Promise<Array<string | null>> {
  const { rows } = await db.pool.query<{ id: string; cacheLeader: string | null }>(
    `select id, "cacheLeader" from jobs where id = any($1::uuid[])`,
    [ids],
  );
  return ids.map((id) => rows.find((r) => r.id === id)?.cacheLeader ?? null);
}

async function waitForEnd(client: ApiClient, id: string): Promise<Record<string, any>> {
  return sleepUntil(async () => {
    const r = await client.get(`/v1/jobs/${id}?wait=10`);
    return ["succeeded", "failed", "canceled", "expired"].includes(r.body.status) ? r.body : undefined;
  });
}

async function withWorkerStopped<T>(fn: () => Promise<T>): Promise<T> {
  await stack.stopWorker();
  try {
    return await fn();
  } finally {
    await stack.startWorker();
  }
}

describe("a hit", () => {
  it("answers an identical request from the cache: succeeded at once, the same result, cached: true, never reaching a worker", async () => {
    const row = uniqueRow();
    const first = await runAndStore(stack.alpha, iris(row));
    expect(first.attempts).toBe(1);
    expect(first).not.toHaveProperty("cached");
    const hitsBefore = await lookups("iris", "hit");

    const { submit, got, waited, listed } = await withWorkerStopped(async () => {
      const submit = await stack.alpha.post("/v1/jobs", iris(row));
      const got = await stack.alpha.get(`/v1/jobs/${submit.body.id}`);
      const waited = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=30`);
      const listed = await stack.alpha.get("/v1/jobs?limit=5&model=iris");
      return { submit, got, waited, listed };
    });
    expect(submit.status).toBe(202);
    expect(submit.headers.get("location")).toBe(`/v1/jobs/${submit.body.id}`);
    expect(submit.body).toMatchObject({ status: "succeeded", cached: true, attempts: 0, result: first.result });
    expect(submit.body.startedAt).toBe(submit.body.completedAt);
    // GET shows what the 202 showed; ?wait answers at once (the job is terminal), with no worker running.
    expect(got.body).toEqual(submit.body);
    expect(waited.body).toEqual(submit.body);
    expect(listed.body.jobs.find((j: { id: string }) => j.id === submit.body.id)).toEqual(submit.body);
    expect(await lookups("iris", "hit")).toBe(hitsBefore + 1);
    // Never queued: no dispatch row names it.
    const { rows } = await db.pool.query(`select 1 from dispatches where $1::uuid = any("jobIds")`, [submit.body.id]);
    expect(rows).toEqual([]);
  });

  it("hits for the same inputs sent with other key order and number spelling (raw JSON text), and misses for a changed value", async () => {
    const first = await runAndStore(stack.alpha, iris([6, 2.5, 5, 1.75]));
    const respelled = `{"inputs":[{"data":[6.0,2.50,5e0,1.750],"shape":[1,4],"datatype":"FP32","name":"features"}],"model":"iris"}`;
    const hit = await stack.alpha.request("POST", "/v1/jobs", {
      body: respelled,
      headers: { "content-type": "application/json" },
    });
    expect(hit.status).toBe(202);
    expect(hit.body).toMatchObject({ status: "succeeded", cached: true, result: first.result });

    const changed = await stack.alpha.post("/v1/jobs", iris([6, 2.5, 5, 1.8]));
    expect(changed.body.status).toBe("queued");
    expect(changed.body).not.toHaveProperty("cached");
    expect(await waitForEnd(stack.alpha, changed.body.id)).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("is also a miss for other requested outputs, and for another shape of the same numbers", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const withOutputs = await stack.alpha.post("/v1/jobs", iris(row, { outputs: [{ name: "probabilities" }] }));
    expect(withOutputs.body.status).toBe("queued");
    const twoRows = await stack.alpha.post("/v1/jobs", iris(row, { inputs: [irisInput([row, row])] }));
    expect(twoRows.body.status).toBe("queued");
    await waitForEnd(stack.alpha, withOutputs.body.id);
    await waitForEnd(stack.alpha, twoRows.body.id);
  });

  it("bypass: runs the model even though the cache holds the answer", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const bypassBefore = await lookups("iris", "bypass");
    const bypass = await stack.alpha.post("/v1/jobs", iris(row, { cache: "bypass" }));
    expect(bypass.status).toBe(202);
    expect(bypass.body.status).toBe("queued");
    const done = await waitForEnd(stack.alpha, bypass.body.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done).not.toHaveProperty("cached");
    expect(await lookups("iris", "bypass")).toBe(bypassBefore + 1);
  });

  it("off: runs the model although the cache holds the answer, and stores nothing (the next identical job misses)", async () => {
    const cachedRow = uniqueRow();
    await runAndStore(stack.alpha, iris(cachedRow));
    const off = await stack.alpha.post("/v1/jobs", iris(cachedRow, { cache: "off" }));
    expect(off.body.status).toBe("queued");
    expect(await waitForEnd(stack.alpha, off.body.id)).toMatchObject({ status: "succeeded", attempts: 1 });

    const row = uniqueRow();
    const writes = await storedWrites();
    const [misses, lookupsBefore] = [await lookups("iris", "miss"), await lookups("iris", "bypass")];
    const first = await stack.alpha.post("/v1/jobs", iris(row, { cache: "off" }));
    const done = await waitForEnd(stack.alpha, first.body.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done).not.toHaveProperty("cached");
    // The same row again, using the cache: a miss that runs, whose result is then the only one stored.
    expect((await runAndStore(stack.alpha, iris(row))).cached).toBeUndefined();
    expect(await lookups("iris", "miss")).toBe(misses + 1);
    expect(await lookups("iris", "bypass")).toBe(lookupsBefore);
    expect((await storedWrites()) - writes).toBe(1);
  });

  it("refuses a cache mode other than bypass or off, naming the field", async () => {
    const res = await stack.alpha.post("/v1/jobs", iris(uniqueRow(), { cache: "only" }));
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body.errors)).toContain("/cache");
  });

  it("is per tenant: beta's first request identical to alpha's cached one takes the miss path and runs", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const missesBefore = await lookups("iris", "miss");
    const beta = await stack.beta.post("/v1/jobs", iris(row));
    expect(beta.body.status).toBe("queued");
    expect(await lookups("iris", "miss")).toBe(missesBefore + 1);
    const done = await waitForEnd(stack.beta, beta.body.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done).not.toHaveProperty("cached");
  });

  it("never serves one model version's result for another", async () => {
    const v1 = await runAndStore(stack.alpha, lookup(1, "1"));
    expect(v1.result.outputs[0].data).toEqual(LOOKUP_TABLE[1]);
    const v2 = await stack.alpha.post("/v1/jobs", lookup(1, "2"));
    expect(v2.body.status).toBe("queued");
    expect((await waitForEnd(stack.alpha, v2.body.id)).result.outputs[0].data).toEqual(LOOKUP_TABLE_V2[1]);
    // Version 1's entry still answers version 1.
    const again = await stack.alpha.post("/v1/jobs", lookup(1, "1"));
    expect(again.body).toMatchObject({ status: "succeeded", cached: true, version: "1", result: v1.result });
  });

  it("with an Idempotency-Key: the hit is the first job, and a replay answers it again", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const key = { "idempotency-key": `cache-${row[0]}` };
    const first = await stack.alpha.post("/v1/jobs", iris(row), key);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ status: "succeeded", cached: true });
    const replay = await stack.alpha.post("/v1/jobs", iris(row), key);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
  });

  it("delivers the hit's webhook once, as job.succeeded carrying cached: true", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const url = receiver.on("/hit", () => ({ status: 200 }));
    const hit = await stack.alpha.post("/v1/jobs", iris(row, { webhook: { url } }));
    expect(hit.body).toMatchObject({ status: "succeeded", cached: true });

    const [delivery] = await sleepUntil(() => (receiver.hits("/hit").length > 0 ? receiver.hits("/hit") : undefined));
    const payload = JSON.parse(delivery!.body);
    expect(payload).toMatchObject({
      type: "job.succeeded",
      data: { id: hit.body.id, status: "succeeded", cached: true, result: hit.body.result },
    });
    const record = await sleepUntil(async () => {
      const r = await stack.alpha.get(`/v1/jobs/${hit.body.id}/webhooks`);
      return r.body.events?.[0]?.status === "delivered" ? r.body : undefined;
    });
    expect(record.events).toHaveLength(1);
    expect(record.events[0]).toMatchObject({ type: "job.succeeded" });
    expect(record.attempts).toHaveLength(1);
  });

  it("answers the v2 infer route from the cache, with no worker running", async () => {
    const row = uniqueRow();
    const first = await runAndStore(stack.alpha, iris(row));
    const res = await withWorkerStopped(() =>
      stack.alpha.post("/v2/models/iris/infer", { id: "r-1", inputs: [irisInput([row])] }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...first.result, id: "r-1" });
  });

  it("runs the model for a v2 infer whose parameters say cache: bypass, and refuses another mode naming the field", async () => {
    const row = uniqueRow();
    await runAndStore(stack.alpha, iris(row));
    const bypassBefore = await lookups("iris", "bypass");
    const res = await stack.alpha.post("/v2/models/iris/infer", {
      id: "r-2",
      inputs: [irisInput([row])],
      parameters: { cache: "bypass", other: 1 },
    });
    expect(res.status).toBe(200);
    expect(await lookups("iris", "bypass")).toBe(bypassBefore + 1);
    const refused = await stack.alpha.post("/v2/models/iris/infer", {
      inputs: [irisInput([row])],
      parameters: { cache: "only" },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain("parameters.cache");
  });
});

describe("single flight", () => {
  it("runs identical requests in flight at once once: all succeed with the same result, all but one cached", async () => {
    const row = uniqueRow();
    const N = 8;
    const mergedBefore = await lookups("iris", "merged");
    // No worker while they arrive: every one of them is in flight together.
    const submits = await withWorkerStopped(async () => {
      const submits = await Promise.all(Array.from({ length: N }, () => stack.alpha.post("/v1/jobs", iris(row))));
      expect(submits.map((s) => [s.status, s.body.status])).toEqual(Array.from({ length: N }, () => [202, "queued"]));
      return submits;
    });
    const done = await Promise.all(submits.map((s) => waitForEnd(stack.alpha, s.body.id)));
    expect(done.map((d) => d.status)).toEqual(Array.from({ length: N }, () => "succeeded"));
    expect(new Set(done.map((d) => JSON.stringify(d.result))).size).toBe(1);
    expect(done.filter((d) => d.cached === true)).toHaveLength(N - 1);
    expect(done.filter((d) => d.attempts > 0)).toHaveLength(1);
    // The worker (started after they were all stored) ran one row of iris.
    expect(await itemsRun("iris")).toBe(1);
    expect(await lookups("iris", "merged")).toBe(mergedBefore + N - 1);
    // Followers were never queue work: no dispatch row names them.
    const { rows } = await db.pool.query(`select 1 from dispatches where "jobIds" && $1::uuid[]`, [
      submits.map((s) => s.body.id),
    ]);
    expect(rows).toEqual([]);
  });

  it("fails the followers with the leader's error when its run fails", async () => {
    const [leader, ...followers] = await withWorkerStopped(async () => {
      const first = await stack.alpha.post("/v1/jobs", lookup(7));
      const rest = await Promise.all([
        stack.alpha.post("/v1/jobs", lookup(7)),
        stack.alpha.post("/v1/jobs", lookup(7)),
      ]);
      return [first, ...rest];
    });
    const ended = await waitForEnd(stack.alpha, leader.body.id);
    expect(ended).toMatchObject({ status: "failed", attempts: 1, error: { code: "inference_error" } });
    for (const f of followers) {
      const job = await waitForEnd(stack.alpha, f.body.id);
      expect(job).toMatchObject({ status: "failed", attempts: 0, error: ended.error });
      expect(job).not.toHaveProperty("cached");
    }
    expect(await itemsRun("lookup-cached")).toBe(1);
    // Failures are not cached: the next identical request runs.
    const next = await stack.alpha.post("/v1/jobs", lookup(7));
    expect(next.body.status).toBe("queued");
    expect(await waitForEnd(stack.alpha, next.body.id)).toMatchObject({ status: "failed", attempts: 1 });
  });

  it("releases the followers when the leader is canceled: they are queued work of their own and run", async () => {
    const row = uniqueRow();
    const { leader, followers } = await withWorkerStopped(async () => {
      const leader = await stack.alpha.post("/v1/jobs", iris(row));
      const followers = await Promise.all([
        stack.alpha.post("/v1/jobs", iris(row)),
        stack.alpha.post("/v1/jobs", iris(row)),
      ]);
      expect(await leadersOf(followers.map((f) => f.body.id))).toEqual([leader.body.id, leader.body.id]);
      const canceled = await stack.alpha.post(`/v1/jobs/${leader.body.id}/cancel`);
      expect(canceled.body.status).toBe("canceled");
      // Released onto a queue entry: their dispatch row exists before any worker runs.
      const { rows } = await db.pool.query<{ n: number }>(
        `select count(*)::int as n from dispatches where "jobIds" && $1::uuid[]`,
        [followers.map((f) => f.body.id)],
      );
      expect(rows[0]!.n).toBeGreaterThan(0);
      return { leader, followers };
    });
    for (const f of followers) {
      const job = await waitForEnd(stack.alpha, f.body.id);
      expect(job).toMatchObject({ status: "succeeded", attempts: 1 });
      expect(job).not.toHaveProperty("cached");
    }
    expect((await stack.alpha.get(`/v1/jobs/${leader.body.id}`)).body.status).toBe("canceled");
    // The released followers' results were stored: the next identical request is a hit.
    await sleepUntil(async () => (await storedWrites()) >= 2);
    expect((await stack.alpha.post("/v1/jobs", iris(row))).body).toMatchObject({ status: "succeeded", cached: true });
  });

  it("leaves followers to their leader when Redis loses the queue: the reconciler re-adds the leader's entry only, and all end once", async () => {
    const row = uniqueRow();
    await stack.stopWorker();
    const leader = await stack.alpha.post("/v1/jobs", iris(row));
    const followers = await Promise.all([
      stack.alpha.post("/v1/jobs", iris(row)),
      stack.alpha.post("/v1/jobs", iris(row)),
    ]);
    expect(await leadersOf(followers.map((f) => f.body.id))).toEqual([leader.body.id, leader.body.id]);
    // Redis restarts without persistence: queue entries, cache entries and flights are gone.
    await deletePrefix(stack.prefix);
    const worker = await stack.startWorker({ RECONCILE_AFTER_MS: "0" });
    expect(await worker.reconciler.runOnce()).toBe(1);
    expect(await waitForEnd(stack.alpha, leader.body.id)).toMatchObject({ status: "succeeded", attempts: 1 });
    for (const f of followers)
      expect(await waitForEnd(stack.alpha, f.body.id)).toMatchObject({
        status: "succeeded",
        attempts: 0,
        cached: true,
      });
    expect(await itemsRun("iris")).toBe(1);
  });

  it("keeps a follower's own cancel, queue deadline and Cancel-After: each ends alone, and the leader's run does not touch it", async () => {
    const row = uniqueRow();
    await stack.stopWorker();
    const leader = await stack.alpha.post("/v1/jobs", iris(row));
    const canceled = await stack.alpha.post("/v1/jobs", iris(row));
    const bounded = await stack.alpha.post("/v1/jobs", iris(row), { "cancel-after": "1s" });
    const deadlined = await stack.alpha.post("/v1/jobs", iris(row, { maxQueueSeconds: 1 }));
    expect(await leadersOf([canceled, bounded, deadlined].map((f) => f.body.id))).toEqual([
      leader.body.id,
      leader.body.id,
      leader.body.id,
    ]);
    expect((await stack.alpha.post(`/v1/jobs/${canceled.body.id}/cancel`)).body.status).toBe("canceled");
    // A worker that does not serve iris: the leader waits, while its deadline sweep ends the followers whose deadlines pass.
    await stack.startWorker({ WORKER_MODELS: "lookup" });
    expect(await waitForEnd(stack.alpha, bounded.body.id)).toMatchObject({ status: "canceled", attempts: 0 });
    expect(await waitForEnd(stack.alpha, deadlined.body.id)).toMatchObject({
      status: "expired",
      attempts: 0,
      error: { code: "deadline_exceeded" },
    });
    expect((await stack.alpha.get(`/v1/jobs/${leader.body.id}`)).body.status).toBe("queued");
    await stack.stopWorker();
    await stack.startWorker();
    expect(await waitForEnd(stack.alpha, leader.body.id)).toMatchObject({ status: "succeeded", attempts: 1 });
    for (const f of [canceled, bounded, deadlined])
      expect((await stack.alpha.get(`/v1/jobs/${f.body.id}`)).body.status).not.toBe("succeeded");
  });
});

describe("with the cache's Redis unreachable", () => {
  let dead: TestStack;
  beforeAll(async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    dead = await startStack({ api: { CACHE_REDIS_URL: url }, workerEnv: { CACHE_REDIS_URL: url } });
  });
  afterAll(async () => {
    await dead?.close();
  });

  it("answers every submit as uncached: each identical request runs, none fails", async () => {
    const body = iris([5.5, 2.5, 4, 1.25]);
    for (let i = 0; i < 2; i++) {
      const submit = await dead.alpha.post("/v1/jobs", body);
      expect(submit.status).toBe(202);
      expect(submit.body.status).toBe("queued");
      const done = await waitForEnd(dead.alpha, submit.body.id);
      expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
      expect(done).not.toHaveProperty("cached");
    }
    const v2 = await dead.alpha.post("/v2/models/iris/infer", { inputs: [irisInput([[5.5, 2.5, 4, 1.25]])] });
    expect(v2.status).toBe(200);
  });
});

/** A webhook receiver on 127.0.0.1 that answers each path through its own behaviour (200 otherwise). */
class Receiver {
  readonly received: Array<{ path: string; body: string }> = [];
  private readonly behaviours = new Map<string, () => { status: number }>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      this.received.push({ path, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead((this.behaviours.get(path) ?? (() => ({ status: 200 })))().status).end("ok");
    });
  });
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  on(path: string, behaviour: () => { status: number }): string {
    this.behaviours.set(path, behaviour);
    return `${this.url}${path}`;
  }

  hits(path: string): Array<{ path: string; body: string }> {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
