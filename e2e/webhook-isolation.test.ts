import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, WebhookEventStore } from "@inferline/db";
import { createRedis } from "@inferline/queue";
import { irisJob, sleepUntil, testRedisUrl, type ApiClient } from "@inferline/testing";
import { recordJobEvents } from "@inferline/outcomes";
import { deliverEvent, WebhookQueue, type HostLookup } from "@inferline/webhooks";
import { startStack, type TestStack } from "./support/stack.ts";

/** A status code, 200 after a while, or no answer at all. */
type Answer = number | { afterMs: number } | "hang";

/**
 * A loopback HTTP receiver (the pattern of webhooks.test.ts): each path answers through its own
 * behaviour; "hang" never answers (close() drops the socket).
 */
class Receiver {
  readonly received: Array<{ path: string; at: number }> = [];
  private readonly behaviours = new Map<string, () => Answer>();
  private readonly server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const path = req.url ?? "/";
      this.received.push({ path, at: Date.now() });
      const answer = (this.behaviours.get(path) ?? (() => 200))();
      if (typeof answer === "number") res.writeHead(answer).end("ok");
      else if (answer !== "hang") setTimeout(() => res.writeHead(200).end("ok"), answer.afterMs);
    });
  });
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  on(path: string, behaviour: () => Answer): string {
    this.behaviours.set(path, behaviour);
    return `${this.url}${path}`;
  }

  hits(path: string): number {
    return this.received.filter((r) => r.path === path).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// Tenant A's receiver hangs for the whole attempt timeout: long, so that the test can see that
// B's webhooks arrive while every A attempt is still hanging.
const HANG_TIMEOUT_MS = 20_000;
// Well below HANG_TIMEOUT_MS: B's webhooks must not wait for A's attempts to time out.
const B_DEADLINE_MS = 8_000;
const MAX_REDELIVERIES = 3;
// The worker's defaults: 16 delivery slots, at most 4 per tenant (WEBHOOK_TENANT_CONCURRENCY).
const WEBHOOK_CONCURRENCY = 16;
const TENANT_CONCURRENCY = 4;

let stack: TestStack;
let slowReceiver: Receiver;
let receiver: Receiver;
let db: Database;

beforeAll(async () => {
  [slowReceiver, receiver] = await Promise.all([new Receiver().start(), new Receiver().start()]);
  stack = await startStack({
    api: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_MAX_REDELIVERIES: String(MAX_REDELIVERIES) },
    workerEnv: {
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_TIMEOUT_MS: String(HANG_TIMEOUT_MS),
      WEBHOOK_RETRY_SCHEDULE_MS: "0,60000",
      WEBHOOK_SWEEP_INTERVAL_MS: "0",
    },
  });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  // Dropping the hanging sockets ends A's attempts, so the worker can stop at once.
  await slowReceiver?.close();
  await receiver?.close();
  await db?.close();
  await stack?.close();
});

async function submit(client: ApiClient, url: string): Promise<string> {
  const res = await client.post("/v1/jobs", irisJob(undefined, { webhook: { url } }));
  expect(res.status, res.text).toBe(202);
  return res.body.id as string;
}

async function succeeded(client: ApiClient, id: string): Promise<void> {
  await sleepUntil(async () => (await client.get(`/v1/jobs/${id}?wait=5`)).body.status === "succeeded", {
    timeoutMs: 15_000,
    message: `job ${id} succeeded`,
  });
}

/** Entries on the webhooks queue not yet finished (running, waiting or parked). */
async function queuedEntries(): Promise<number> {
  const redis = createRedis(testRedisUrl());
  const queue = new WebhookQueue(redis, stack.prefix);
  try {
    const counts = await queue.queue.getJobCounts("active", "wait", "delayed", "prioritized");
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

describe("webhook delivery isolation between tenants", () => {
  it("tenant A's receiver never answers; tenant B's webhooks still arrive while A's attempts hang", async () => {
    const hang = slowReceiver.on("/a", () => "hang");
    const aJobs: string[] = [];
    for (let i = 0; i < WEBHOOK_CONCURRENCY + 4; i++) aJobs.push(await submit(stack.alpha, hang));
    for (const id of aJobs) await succeeded(stack.alpha, id);
    // A also loops on redeliver: those entries share A's cap.
    for (let i = 0; i < MAX_REDELIVERIES; i++)
      expect((await stack.alpha.post(`/v1/jobs/${aJobs[0]}/webhooks/redeliver`)).status).toBe(202);
    // Every A entry is on the queue (ahead of B's), and A holds its slots with hanging attempts.
    await sleepUntil(async () => (await queuedEntries()) === aJobs.length + MAX_REDELIVERIES, {
      message: "A's entries on the webhooks queue",
    });
    await sleepUntil(() => slowReceiver.hits("/a") >= TENANT_CONCURRENCY, {
      message: "A's first attempts reached its receiver",
    });
    const firstHang = Math.min(...slowReceiver.received.map((r) => r.at));

    const ok = receiver.on("/b", () => 200);
    const bJobs: string[] = [];
    for (let i = 0; i < 3; i++) bJobs.push(await submit(stack.beta, ok));
    await sleepUntil(() => receiver.hits("/b") === bJobs.length, {
      timeoutMs: B_DEADLINE_MS,
      message: "B's webhooks arrived while A's receiver hangs",
    });

    expect(Date.now() - firstHang).toBeLessThan(HANG_TIMEOUT_MS);
    // No A attempt has ended (an attempt is recorded when it ends), and A never had more than its
    // cap in flight: the rest of its entries gave their slots back.
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from webhook_deliveries d join webhook_events e on e.id = d."eventId" where e."jobId" = any($1::uuid[])`,
      [aJobs],
    );
    expect(rows[0]!.n).toBe(0);
    expect(slowReceiver.hits("/a")).toBe(TENANT_CONCURRENCY);
    for (const id of bJobs) {
      const record = await sleepUntil(async () => {
        const body = (await stack.beta.get(`/v1/jobs/${id}/webhooks`)).body;
        return body.events[0]?.status === "delivered" ? body : undefined;
      });
      expect(record.attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200 })]);
    }
  });
});

describe("a tenant over its cap", () => {
  it("still gets every webhook once, on its first attempt: a parked entry loses no attempt and no event", async () => {
    const epsilon = stack.alpha.withKey(await stack.createKey("epsilon"));
    // Slow enough that the burst's deliveries overlap, and most entries find the tenant at its cap.
    const url = receiver.on("/burst", () => ({ afterMs: 100 }));
    const jobs = await Promise.all(Array.from({ length: 30 }, () => submit(epsilon, url)));
    const rows = await sleepUntil(
      async () => {
        const { rows } = await db.pool.query<{ status: string; attempts: number }>(
          `select status, attempts from webhook_events where "jobId" = any($1::uuid[])`,
          [jobs],
        );
        return rows.length === jobs.length && rows.every((r) => r.status === "delivered") ? rows : undefined;
      },
      { timeoutMs: 20_000, message: "every webhook of the burst delivered" },
    );
    expect(rows.map((r) => r.attempts)).toEqual(jobs.map(() => 1));
    expect(receiver.hits("/burst")).toBe(jobs.length);
  });
});

describe("redelivery limit", () => {
  it(`answers 429 redelivery_limit past ${MAX_REDELIVERIES} redeliveries of one event, and sends nothing more`, async () => {
    const gamma = stack.alpha.withKey(await stack.createKey("gamma"));
    const url = receiver.on("/again", () => 200);
    const id = await submit(gamma, url);
    await sleepUntil(() => receiver.hits("/again") === 1);
    for (let n = 1; n <= MAX_REDELIVERIES; n++) {
      const res = await gamma.post(`/v1/jobs/${id}/webhooks/redeliver`);
      expect(res.status, res.text).toBe(202);
      expect(res.body).toMatchObject({ status: "queued", redeliveries: n, maxRedeliveries: MAX_REDELIVERIES });
    }
    const refused = await gamma.post(`/v1/jobs/${id}/webhooks/redeliver`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: "redelivery_limit", title: "Too Many Requests" });
    expect(refused.body.detail).toContain(`redelivered ${MAX_REDELIVERIES} times`);
    // A lifetime limit: waiting does not lift it, so no Retry-After.
    expect(refused.headers.get("retry-after")).toBeNull();

    const record = await sleepUntil(async () => {
      const body = (await gamma.get(`/v1/jobs/${id}/webhooks`)).body;
      return body.attempts.length === 1 + MAX_REDELIVERIES ? body : undefined;
    });
    expect(record.events[0]).toMatchObject({ status: "delivered", redeliveries: MAX_REDELIVERIES });
    expect(receiver.hits("/again")).toBe(1 + MAX_REDELIVERIES);
    // Another tenant's 404 is still a 404, not a 429.
    expect((await stack.beta.post(`/v1/jobs/${id}/webhooks/redeliver`)).status).toBe(404);
  });

  it("counts concurrent requests exactly: the limit is never passed", async () => {
    const delta = stack.alpha.withKey(await stack.createKey("delta"));
    const url = receiver.on("/concurrent", () => 200);
    const id = await submit(delta, url);
    await sleepUntil(() => receiver.hits("/concurrent") === 1);
    const statuses = (
      await Promise.all(
        Array.from({ length: MAX_REDELIVERIES + 3 }, () => delta.post(`/v1/jobs/${id}/webhooks/redeliver`)),
      )
    ).map((r) => r.status);
    expect(statuses.sort()).toEqual([...Array<number>(MAX_REDELIVERIES).fill(202), 429, 429, 429]);
  });
});

/** A finished job of tenant alpha with an event for `url` recorded but not enqueued: only the test's own deliverEvent call attempts it. */
async function unqueuedEvent(url: string): Promise<{ jobId: string; eventId: string }> {
  const id = (await stack.alpha.post("/v1/jobs", irisJob())).body.id as string;
  await succeeded(stack.alpha, id);
  const { rows } = await db.pool.query<{ tenantId: string }>(`select "tenantId" from jobs where id = $1`, [id]);
  const [event] = await recordJobEvents(new WebhookEventStore(db.pool), [
    { id, tenantId: rows[0]!.tenantId, status: "succeeded", model: "iris", webhook: { url } },
  ]);
  return { jobId: id, eventId: event!.id };
}

/**
 * A listener whose accept queue is full: its process is blocked (Atomics.wait, no CPU) right
 * after listen with a backlog of 1, and two connections fill the queue, so the kernel drops
 * further SYNs and a connect hangs as it does to a host that drops packets.
 */
async function unansweredListener(): Promise<{ port: number; close(): void }> {
  const script = `const s = require("net").createServer();
    s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => process.stdout.write(s.address().port + "\\n", () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)));`;
  const child: ChildProcess = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) =>
    child.stdout!.once("data", (d: Buffer) => resolve(Number(String(d).trim()))),
  );
  const fillers: net.Socket[] = [];
  // Connect until one connection stays pending: the queue is full from then on.
  for (let connected = true; connected && fillers.length < 10;) {
    const socket = net.connect(port, "127.0.0.1").on("error", () => {});
    fillers.push(socket);
    connected = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
  }
  return {
    port,
    close() {
      for (const socket of fillers) socket.destroy();
      child.kill("SIGKILL");
    },
  };
}

describe("connect timeout", () => {
  it("a host that never completes the TCP handshake fails the attempt at the connect timeout, not the response timeout", async () => {
    const listener = await unansweredListener();
    try {
      const { eventId } = await unqueuedEvent(`http://127.0.0.1:${listener.port}/hook`);
      const result = await deliverEvent(new WebhookEventStore(db.pool), eventId, {
        allowPrivate: true,
        timeoutMs: HANG_TIMEOUT_MS,
        connectTimeoutMs: 300,
        schedule: [0, 60_000],
      });
      expect(result).toMatchObject({ outcome: "retry", attempt: 1, error: "no connection within 300 ms" });
      expect(result.latencyMs).toBeLessThan(HANG_TIMEOUT_MS);
    } finally {
      listener.close();
    }
  });
});

describe("DNS timeout at delivery", () => {
  it("a lookup that does not answer in time is a failed attempt, retried on the schedule", async () => {
    const { jobId: id, eventId } = await unqueuedEvent("https://slow-dns.example.com/hook");
    const never: HostLookup = () => new Promise(() => {});
    const result = await deliverEvent(new WebhookEventStore(db.pool), eventId, {
      lookup: never,
      lookupTimeoutMs: 100,
      schedule: [0, 60_000],
    });
    expect(result).toMatchObject({
      outcome: "retry",
      attempt: 1,
      error: "refused: the webhook host slow-dns.example.com did not resolve within 100 ms",
    });
    const record = (await stack.alpha.get(`/v1/jobs/${id}/webhooks`)).body;
    expect(record.events[0]).toMatchObject({ status: "pending", attempts: 1 });
    expect(record.attempts[0]).toMatchObject({ error: result.error, statusCode: null });
    expect(record.attempts[0].nextRetryAt).not.toBeNull();
  });
});
