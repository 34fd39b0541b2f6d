import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantStore } from "@inferline/db";
import { createRedis, publishKeyRevocation, runningUnderCap, tenantCapKey, TenantLeases } from "@inferline/queue";
import {
  ApiClient,
  freePort,
  IRIS_SAMPLES,
  irisInput,
  irisJob,
  sleepUntil,
  startRedisCluster,
  type RedisCluster,
} from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// The API and a worker on a real three-master Redis Cluster (REDIS_CLUSTER_NODES): queues,
// pub/sub wake-ups, webhooks, batches and the result cache. REDIS_URL points where nothing
// listens, so nothing here can work unless every connection is a cluster connection.

let cluster: RedisCluster;
let stack: TestStack;
let db: Database;
let receiver: http.Server;
let hookUrl: string;
let deadUrl: string;
const received: Array<{ headers: Record<string, string>; body: string }> = [];
// Far past every wait below: a long-poll is answered in time only by the finished message.
const RECHECK_MS = "60000";

beforeAll(async () => {
  cluster = await startRedisCluster();
  deadUrl = `redis://127.0.0.1:${await freePort()}`;
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]),
      );
      received.push({ headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const redis = { REDIS_URL: deadUrl, REDIS_CLUSTER_NODES: cluster.nodes, WEBHOOK_ALLOW_PRIVATE: "true" };
  stack = await startStack({
    worker: false,
    api: { ...redis, LONG_POLL_RECHECK_MS: RECHECK_MS },
    workerEnv: { ...redis, WEBHOOK_SWEEP_INTERVAL_MS: "0" },
  });
  db = new Database(stack.db.url, { poolSize: 2 });
}, 60_000);
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await cluster?.remove();
});

async function metric(name: string): Promise<number> {
  const text = (await stack.anonymous.get("/metrics")).text;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** The worker's count of results stored in the cache. */
async function cacheWrites(): Promise<number> {
  const text = await stack.worker!.metrics.registry.metrics();
  const m = text.match(/^inferline_cache_writes_total\{model="iris",outcome="stored"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

/** Every key of the cluster, with the port of the node that holds it. */
async function clusterKeys(): Promise<Array<{ key: string; port: number }>> {
  const clients = cluster.nodeClients();
  try {
    const perNode = await Promise.all(
      clients.map(async (c, i) => (await c.keys("*")).map((key) => ({ key, port: cluster.ports[i]! }))),
    );
    return perNode.flat();
  } finally {
    for (const c of clients) c.disconnect();
  }
}

/** `n` distinct iris items no other test of this file sends. */
const items = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => ({
    customId: `c-${i}`,
    inputs: [irisInput([[4 + seed + i / 8, 3, 1.5 + i / 4, 0.2]])],
  }));

describe("on a Redis Cluster", () => {
  it("a job's long-poll is answered by the finished message over the cluster's pub/sub", async () => {
    const submit = await stack.alpha.post("/v1/jobs", irisJob([IRIS_SAMPLES.versicolor], { cache: "bypass" }));
    expect(submit.status, submit.text).toBe(202);
    // The wait outlasts the deadline below; only the wake-up can answer before both.
    const poll = stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=50`);
    await sleepUntil(async () => (await metric("inferline_api_long_poll_waiters")) === 1, {
      message: "the long-poll never waited",
    });
    await stack.startWorker();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error("the long-poll was not woken within 20 s")), 20_000)),
    );
    const done = await Promise.race([poll, deadline]).finally(() => clearTimeout(timer));
    expect(done.body).toMatchObject({ id: submit.body.id, status: "succeeded", attempts: 1 });
    expect(done.body.result.classifications[0].label).toBe("versicolor");
  });

  it("delivers a webhook signed with the tenant's secret", async () => {
    const submit = await stack.alpha.post(
      "/v1/jobs",
      irisJob([IRIS_SAMPLES.virginica], { cache: "bypass", webhook: { url: hookUrl } }),
    );
    expect(submit.status, submit.text).toBe(202);
    const hit = await sleepUntil(() => received.find((r) => r.body.includes(submit.body.id as string)), {
      timeoutMs: 20_000,
      message: "the webhook never arrived",
    });
    const secret = (await stack.alpha.get("/v1/webhooks/secret")).body.secret as string;
    const payload = new Webhook(secret).verify(hit.body, hit.headers) as {
      type: string;
      data: { id: string; status: string };
    };
    expect(payload).toMatchObject({ type: "job.succeeded", data: { id: submit.body.id, status: "succeeded" } });
  });

  it("runs a batch, and answers it again from the result cache on the cluster (several keys across slots)", async () => {
    const body = { model: "iris", items: items(6, 0) };
    const writes = await cacheWrites();
    const first = await stack.alpha.post("/v1/batches", body);
    expect(first.status, first.text).toBe(202);
    const done = await stack.alpha.get(`/v1/batches/${first.body.id}?wait=30`);
    expect(done.body).toMatchObject({ status: "completed", counts: { succeeded: 6, failed: 0 } });
    const lines = (await stack.alpha.get(`/v1/batches/${first.body.id}/results`)).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.customId)).toEqual(body.items.map((i) => i.customId));
    expect(lines.every((l) => l.status === "succeeded" && l.result.classifications.length > 0)).toBe(true);
    await sleepUntil(async () => (await cacheWrites()) - writes >= 6, { message: "the worker stored no results" });

    // All six read in one call (MGET on one Redis): answered at creation, nothing queued.
    const again = await stack.alpha.post("/v1/batches", body);
    expect(again.body).toMatchObject({ status: "completed", counts: { succeeded: 6, queued: 0 } });
    const againLines = (await stack.alpha.get(`/v1/batches/${again.body.id}/results`)).text.trim().split("\n");
    expect(againLines.every((l) => l.endsWith(',"cached":true}'))).toBe(true);
  });

  it("answers an identical iris job from the cache, and its single-flight claim is released", async () => {
    const job = irisJob([[5.5, 2.5, 4, 1.3]]);
    const writes = await cacheWrites();
    const first = await stack.alpha.post("/v1/jobs", job);
    expect((await stack.alpha.get(`/v1/jobs/${first.body.id}?wait=30`)).body.status).toBe("succeeded");
    await sleepUntil(async () => (await cacheWrites()) > writes, { message: "the worker stored no result" });
    const hit = await stack.alpha.post("/v1/jobs", job);
    expect(hit.body).toMatchObject({ status: "succeeded", cached: true, attempts: 0 });
    await sleepUntil(async () => !(await clusterKeys()).some((k) => k.key.startsWith(`${stack.prefix}:cache:f:`)), {
      message: "a flight claim was never released",
    });
  });

  it("a revoked key announced on one node is refused by the API subscribed on the cluster", async () => {
    const tenants = new TenantStore(db.pool, db.prisma);
    const { key, keyId } = await tenants.createKey("gamma");
    const client = new ApiClient(stack.api.url, key);
    expect((await client.get("/v1/models")).status).toBe(200);
    const revoked = await tenants.revokeKey(keyId);
    // The API holds a verified key for 30 s; only the announcement makes it refuse sooner.
    await publishKeyRevocation(
      { url: deadUrl, clusterNodes: cluster.ports.map((port) => ({ host: "127.0.0.1", port })) },
      stack.prefix,
      [revoked!.keyHash],
    );
    await sleepUntil(async () => (await client.get("/v1/models")).status === 401, {
      timeoutMs: 5000,
      message: "the revoked key is still accepted",
    });
  });

  it("takes a lease on a tenant's cap on one model and over every model in one script (the tenant's hash tag)", async () => {
    const redis = createRedis({
      url: deadUrl,
      clusterNodes: cluster.ports.map((port) => ({ host: "127.0.0.1", port })),
    });
    try {
      const leases = new TenantLeases(redis, 60_000);
      const [model, all] = [
        tenantCapKey(stack.prefix, "tenant-a", "iris"),
        tenantCapKey(stack.prefix, "tenant-a", "*"),
      ];
      const slots = [
        { key: model, maxRunning: 1 },
        { key: all, maxRunning: 2 },
      ];
      const lease = await leases.acquire("one", slots, 1);
      expect(lease).not.toBeNull();
      expect(await leases.acquire("two", slots, 1)).toBeNull();
      expect(await runningUnderCap(redis, all)).toBe(1);
      await leases.renew(lease!);
      await leases.release(lease!);
      expect(await runningUnderCap(redis, model)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it("keeps BullMQ's keys in one hash slot ({prefix}) and the rest under the plain prefix", async () => {
    const keys = await clusterKeys();
    const bull = keys.filter((k) => k.key.startsWith(`{${stack.prefix}}:`));
    expect(bull.some((k) => k.key.startsWith(`{${stack.prefix}}:infer-iris@1:`))).toBe(true);
    expect(bull.some((k) => k.key.startsWith(`{${stack.prefix}}:webhooks:`))).toBe(true);
    expect(new Set(bull.map((k) => k.port)).size).toBe(1);
    const clients = cluster.nodeClients();
    try {
      const slots = await Promise.all(
        [`{${stack.prefix}}:infer-iris@1:id`, `{${stack.prefix}}:webhooks:id`].map((k) =>
          clients[0]!.cluster("KEYSLOT", k),
        ),
      );
      expect(slots[0]).toBe(slots[1]);
    } finally {
      for (const c of clients) c.disconnect();
    }
    expect(
      keys.some((k) => k.key.startsWith(`${stack.prefix}:infer-`) || k.key.startsWith(`${stack.prefix}:webhooks:`)),
    ).toBe(false);
    expect(keys.some((k) => k.key.startsWith(`${stack.prefix}:cache:r:`))).toBe(true);
    expect(keys.some((k) => k.key.startsWith(`${stack.prefix}:model-readiness:iris`))).toBe(true);
  });
});
