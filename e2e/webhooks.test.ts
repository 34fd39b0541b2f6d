import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobView, WebhookPayload } from "@inferline/contracts";
import { Database, WebhookEventStore } from "@inferline/db";
import { irisJob, sleepUntil, testRedisUrl, type ApiClient } from "@inferline/testing";
import { createRedis } from "@inferline/queue";
import { WebhookQueue } from "@inferline/webhooks";
import { recordJobEvents } from "@inferline/outcomes";
import { startStack, type TestStack } from "./support/stack.ts";

/** A request as the loopback receiver saw it. */
interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

type Answer = { status: number; headers?: Record<string, string>; body?: string } | "hang";

/**
 * A real HTTP receiver on 127.0.0.1 (port 0). Each path answers through its own behaviour, which
 * sees how many requests that path has had (1 for the first); unknown paths answer 200.
 */
class Receiver {
  readonly received: Received[] = [];
  private readonly behaviours = new Map<string, (n: number) => Answer>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]),
      );
      this.received.push({ path, headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() });
      const behaviour = this.behaviours.get(path) ?? ((): Answer => ({ status: 200 }));
      const answer = behaviour(this.hits(path).length);
      if (answer === "hang") return; // never answers; close() drops the socket
      res.writeHead(answer.status, answer.headers).end(answer.body ?? "ok");
    });
  });
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  on(path: string, behaviour: (n: number) => Answer): string {
    this.behaviours.set(path, behaviour);
    return `${this.url}${path}`;
  }

  hits(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let stack: TestStack;
let receiver: Receiver;
let db: Database;
const SCHEDULE = "0,100,200"; // three attempts
// Generous, so that a loaded machine never turns a quick answer into a timeout; the timeout test
// runs a worker of its own with a short one.
const TIMEOUT_MS = 5000;
const SHORT_TIMEOUT_MS = 300;

beforeAll(async () => {
  receiver = await new Receiver().start();
  stack = await startStack({
    api: { WEBHOOK_ALLOW_PRIVATE: "true" },
    workerEnv: {
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_RETRY_SCHEDULE_MS: SCHEDULE,
      WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
      WEBHOOK_SWEEP_INTERVAL_MS: "0",
    },
  });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await receiver?.close();
});

/** Submits a job that runs (these tests are about a run's outcome and events: the result cache is bypassed; result-cache.test.ts covers a hit's webhook). */
async function submit(client: ApiClient, webhook: Record<string, unknown> | undefined): Promise<string> {
  const res = await client.post("/v1/jobs", irisJob(undefined, { cache: "bypass", ...(webhook ? { webhook } : {}) }));
  expect(res.status, res.text).toBe(202);
  return res.body.id as string;
}

/** GET /v1/jobs/:id/webhooks once `until` holds for it. */
async function webhooksOf(
  jobId: string,
  until: (record: any) => boolean,
  client: ApiClient = stack.alpha,
  timeoutMs = 10_000,
): Promise<any> {
  return sleepUntil(
    async () => {
      const res = await client.get(`/v1/jobs/${jobId}/webhooks`);
      return res.status === 200 && until(res.body) ? res.body : undefined;
    },
    { timeoutMs, message: `webhook record of job ${jobId}` },
  );
}

/** Runs `fn` with the worker restarted on `env` (over the stack's), then restores the usual worker. */
async function withWorker<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  await stack.stopWorker();
  await stack.startWorker(env);
  try {
    return await fn();
  } finally {
    await stack.stopWorker();
    await stack.startWorker();
  }
}

const secretOf = async (client: ApiClient): Promise<string> => (await client.get("/v1/webhooks/secret")).body.secret;

function verify(secret: string, r: Received): unknown {
  return new Webhook(secret).verify(r.body, r.headers);
}

describe("delivery", () => {
  it("delivers a signed job.succeeded once, with the job as GET /v1/jobs/:id shows it, and records the attempt", async () => {
    const url = receiver.on("/ok", () => ({ status: 204 }));
    const id = await submit(stack.alpha, { url });
    const [hit] = await sleepUntil(() => (receiver.hits("/ok").length > 0 ? receiver.hits("/ok") : undefined));

    // Verified by the Standard Webhooks reference implementation, not by our code.
    const payload = verify(await secretOf(stack.alpha), hit!) as {
      type: string;
      timestamp: string;
      data: { id: string };
    };
    // The one schema of the payload (the OpenAPI document's, so the SDK's type) has every field:
    // parsing keeps only what it declares, and requires all of it.
    expect(WebhookPayload.parse(payload)).toEqual(payload);
    expect(payload.type).toBe("job.succeeded");
    expect(payload.data).toEqual((await stack.alpha.get(`/v1/jobs/${id}`)).body);
    expect(Number.isNaN(Date.parse(payload.timestamp))).toBe(false);
    expect(hit!.headers["webhook-id"]).toMatch(/^msg_/);
    expect(Math.abs(Number(hit!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    expect(hit!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    expect(hit!.headers["content-type"]).toBe("application/json");
    const otherTenant = await secretOf(stack.beta);
    expect(() => verify(otherTenant, hit!)).toThrow(/No matching signature/);

    const record = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    expect(record.events).toEqual([
      expect.objectContaining({
        id: hit!.headers["webhook-id"],
        type: "job.succeeded",
        url,
        status: "delivered",
        attempts: 1,
      }),
    ]);
    expect(record.attempts).toEqual([
      expect.objectContaining({
        eventId: hit!.headers["webhook-id"],
        attempt: 1,
        url,
        statusCode: 204,
        error: null,
        nextRetryAt: null,
      }),
    ]);
    expect(record.attempts[0].latencyMs).toBeGreaterThanOrEqual(0);
    expect(receiver.hits("/ok")).toHaveLength(1);
  });

  it("carries the job in the same JSON shape as GET /v1/jobs/:id: every field, in the same order, and only the contract's", async () => {
    const url = receiver.on("/shape", () => ({ status: 200 }));
    const res = await stack.alpha.post(
      "/v1/jobs",
      irisJob(undefined, {
        cache: "bypass",
        priority: "low",
        metadata: { order: "17", customer: "c-9" },
        webhook: { url },
      }),
    );
    expect(res.status, res.text).toBe(202);
    const [hit] = await sleepUntil(() => (receiver.hits("/shape").length > 0 ? receiver.hits("/shape") : undefined));
    const data = (JSON.parse(hit!.body) as { data: Record<string, unknown> }).data;
    const shown = JSON.parse((await stack.alpha.get(`/v1/jobs/${res.body.id}`)).text) as Record<string, unknown>;

    expect(Object.keys(data)).toEqual(Object.keys(shown));
    expect(data).toStrictEqual(shown);
    expect(JobView.strict().parse(data)).toStrictEqual(data);
    // A run's success shows every field of the contract but a batch item's and those of other outcomes.
    const absent = ["batchId", "customId", "cached", "error"];
    expect(Object.keys(data).sort()).toEqual(
      Object.keys(JobView.shape)
        .filter((k) => !absent.includes(k))
        .sort(),
    );
  });

  it("retries a receiver that fails twice, then succeeds: three attempts, one webhook-id", async () => {
    const url = receiver.on("/flaky", (n) => (n <= 2 ? { status: 500, body: "boom" } : { status: 200 }));
    const id = await submit(stack.alpha, { url });
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    expect(record.attempts.map((a: any) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(record.attempts[0].error).toBe("receiver answered 500");
    expect(record.attempts[0].responseBody).toBe("boom");
    expect(record.attempts[0].nextRetryAt).not.toBeNull();
    expect(record.attempts[2].nextRetryAt).toBeNull();
    const hits = receiver.hits("/flaky");
    expect(hits).toHaveLength(3);
    expect(new Set(hits.map((h) => h.headers["webhook-id"]))).toEqual(new Set([record.events[0].id]));
    const secret = await secretOf(stack.alpha);
    for (const h of hits) expect(verify(secret, h)).toMatchObject({ type: "job.succeeded" });
  });

  it("honours Retry-After (seconds) over a shorter scheduled delay", async () => {
    const url = receiver.on("/busy", (n) =>
      n === 1 ? { status: 503, headers: { "retry-after": "1" } } : { status: 200 },
    );
    const id = await submit(stack.alpha, { url });
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    const [first, second] = receiver.hits("/busy");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(
      Date.parse(record.attempts[0].nextRetryAt) - Date.parse(record.attempts[0].attemptedAt),
    ).toBeGreaterThanOrEqual(1000);
  });

  it("records a receiver that never answers as a timeout, and gives up after the schedule", async () => {
    const url = receiver.on("/silent", () => "hang");
    await withWorker({ WEBHOOK_TIMEOUT_MS: String(SHORT_TIMEOUT_MS) }, async () => {
      const id = await submit(stack.alpha, { url });
      const record = await webhooksOf(id, (r) => r.events[0]?.status === "failed", stack.alpha, 15_000);
      expect(record.attempts).toHaveLength(3);
      for (const a of record.attempts) {
        expect(a.error).toBe(`no answer within ${SHORT_TIMEOUT_MS} ms`);
        expect(a.statusCode).toBeNull();
        expect(a.latencyMs).toBeGreaterThanOrEqual(SHORT_TIMEOUT_MS - 50);
      }
      expect(record.events[0].nextAttemptAt).toBeUndefined();
      expect(receiver.hits("/silent")).toHaveLength(3);
    });
  });

  it("stops at 410 Gone", async () => {
    const url = receiver.on("/gone", () => ({ status: 410 }));
    const id = await submit(stack.alpha, { url });
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "gone");
    expect(record.attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 410, nextRetryAt: null })]);
    expect(record.events[0]).toMatchObject({ status: "gone", attempts: 1 });
  });

  it("does not follow a redirect: a 3xx is a recorded failure", async () => {
    const target = receiver.on("/redirect-target", () => ({ status: 200 }));
    const url = receiver.on("/redirect", () => ({ status: 302, headers: { location: target } }));
    const id = await submit(stack.alpha, { url });
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "failed");
    expect(record.attempts.map((a: any) => a.statusCode)).toEqual([302, 302, 302]);
    expect(record.attempts[0].error).toBe(`redirect (302 to ${target}) not followed`);
    expect(receiver.hits("/redirect-target")).toHaveLength(0);
  });

  it("reads at most 4 KiB of the receiver's answer", async () => {
    const url = receiver.on("/chatty", () => ({ status: 200, body: "x".repeat(1024 * 1024) }));
    const id = await submit(stack.alpha, { url });
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    expect(record.attempts[0].responseBody).toHaveLength(4096);
  });

  it("honours the events filter", async () => {
    const filtered = receiver.on("/filtered", () => ({ status: 200 }));
    const wanted = receiver.on("/wanted", () => ({ status: 200 }));
    const skipped = await submit(stack.alpha, { url: filtered, events: ["job.failed"] });
    expect((await stack.alpha.get(`/v1/jobs/${skipped}?wait=10`)).body.status).toBe("succeeded");
    // Events are recorded in the order jobs finish: once a later job's event is delivered, the
    // filtered job's would have been recorded already.
    const probe = await submit(stack.alpha, { url: wanted, events: ["job.succeeded"] });
    await webhooksOf(probe, (r) => r.events[0]?.status === "delivered");
    expect((await stack.alpha.get(`/v1/jobs/${skipped}/webhooks`)).body).toEqual({ events: [], attempts: [] });
    expect(receiver.hits("/filtered")).toHaveLength(0);
    expect(receiver.hits("/wanted")).toHaveLength(1);
  });
});

describe("secrets", () => {
  it("rotation: both the new and the previous secret sign during the window, each verifiable on its own", async () => {
    const gamma = stack.alpha.withKey(await stack.createKey("gamma"));
    const before = await secretOf(gamma);
    expect(before).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const rotated = await gamma.post("/v1/webhooks/secret/rotate");
    expect(rotated.status).toBe(200);
    const after = rotated.body.secret as string;
    expect(after).not.toBe(before);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    expect((await gamma.get("/v1/webhooks/secret")).body).toEqual(rotated.body);

    const url = receiver.on("/rotated", () => ({ status: 200 }));
    await submit(gamma, { url });
    const [hit] = await sleepUntil(() =>
      receiver.hits("/rotated").length > 0 ? receiver.hits("/rotated") : undefined,
    );
    const signatures = hit!.headers["webhook-signature"]!.split(" ");
    expect(signatures).toHaveLength(2);
    const only = (signature: string) => ({ ...hit!, headers: { ...hit!.headers, "webhook-signature": signature } });
    expect(verify(after, only(signatures[0]!))).toMatchObject({ type: "job.succeeded" });
    expect(verify(before, only(signatures[1]!))).toMatchObject({ type: "job.succeeded" });
    expect(() => verify(before, only(signatures[0]!))).toThrow();
    expect(() => verify(after, only(signatures[1]!))).toThrow();
    // A receiver holding either secret accepts the message as sent.
    expect(verify(before, hit!)).toBeTruthy();
    expect(verify(after, hit!)).toBeTruthy();
  });

  it("rotating twice inside the window keeps the original secret signing too, for its own full window", async () => {
    const delta = stack.alpha.withKey(await stack.createKey("delta"));
    const original = await secretOf(delta);
    const first = await delta.post("/v1/webhooks/secret/rotate");
    const second = await delta.post("/v1/webhooks/secret/rotate");
    expect(second.status).toBe(200);
    const [middle, latest] = [first.body.secret as string, second.body.secret as string];
    // The view names the latest expiry among the secrets still signing: the one the second rotation replaced.
    expect(Date.parse(second.body.previousSecretExpiresAt)).toBeGreaterThanOrEqual(
      Date.parse(first.body.previousSecretExpiresAt),
    );

    const url = receiver.on("/rotated-twice", () => ({ status: 200 }));
    await submit(delta, { url });
    const [hit] = await sleepUntil(() =>
      receiver.hits("/rotated-twice").length > 0 ? receiver.hits("/rotated-twice") : undefined,
    );
    const signatures = hit!.headers["webhook-signature"]!.split(" ");
    expect(signatures).toHaveLength(3);
    const only = (signature: string) => ({ ...hit!, headers: { ...hit!.headers, "webhook-signature": signature } });
    // Newest first: the current secret, then each it replaced.
    expect(verify(latest, only(signatures[0]!))).toMatchObject({ type: "job.succeeded" });
    expect(verify(middle, only(signatures[1]!))).toMatchObject({ type: "job.succeeded" });
    expect(verify(original, only(signatures[2]!))).toMatchObject({ type: "job.succeeded" });
    for (const secret of [original, middle, latest]) expect(verify(secret, hit!)).toBeTruthy();
  });
});

describe("record and redelivery", () => {
  it("redelivers the last event as a new attempt with the same webhook-id", async () => {
    const url = receiver.on("/again", () => ({ status: 200 }));
    const id = await submit(stack.alpha, { url });
    const first = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    const res = await stack.alpha.post(`/v1/jobs/${id}/webhooks/redeliver`);
    expect(res.status).toBe(202);
    expect(res.body.eventId).toBe(first.events[0].id);
    const record = await webhooksOf(id, (r) => r.attempts.length === 2);
    expect(record.attempts.map((a: any) => [a.attempt, a.statusCode])).toEqual([
      [1, 200],
      [2, 200],
    ]);
    const hits = receiver.hits("/again");
    expect(hits).toHaveLength(2);
    expect(hits[1]!.headers["webhook-id"]).toBe(hits[0]!.headers["webhook-id"]);
    expect(verify(await secretOf(stack.alpha), hits[1]!)).toMatchObject({ type: "job.succeeded", data: { id } });
  });

  it("is the owner's only: 404 to another tenant; redelivery of a job without events is 404", async () => {
    const url = receiver.on("/private-record", () => ({ status: 200 }));
    const id = await submit(stack.alpha, { url });
    await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    expect((await stack.beta.get(`/v1/jobs/${id}/webhooks`)).status).toBe(404);
    expect((await stack.beta.post(`/v1/jobs/${id}/webhooks/redeliver`)).status).toBe(404);
    expect((await stack.alpha.get(`/v1/jobs/not-a-uuid/webhooks`)).status).toBe(404);
    const plain = await submit(stack.alpha, undefined);
    expect((await stack.alpha.get(`/v1/jobs/${plain}?wait=10`)).body.status).toBe("succeeded");
    expect((await stack.alpha.get(`/v1/jobs/${plain}/webhooks`)).body).toEqual({ events: [], attempts: [] });
    const redeliver = await stack.alpha.post(`/v1/jobs/${plain}/webhooks/redeliver`);
    expect(redeliver.status).toBe(404);
    expect(redeliver.body.code).toBe("not_found");
  });

  it("a pending event with no queue entry (a crash between the two writes) is delivered by the sweep", async () => {
    const url = receiver.on("/swept", () => ({ status: 200 }));
    const id = await submit(stack.alpha, undefined);
    expect((await stack.alpha.get(`/v1/jobs/${id}?wait=10`)).body.status).toBe("succeeded");
    const { rows } = await db.pool.query<{ tenantId: string }>(`select "tenantId" from jobs where id = $1`, [id]);
    // Record the event as the worker would, but "crash" before enqueueing it.
    const [event] = await recordJobEvents(new WebhookEventStore(db.pool), [
      { id, tenantId: rows[0]!.tenantId, status: "succeeded", model: "iris", webhook: { url } },
    ]);
    expect(event).toBeDefined();
    expect((await stack.alpha.get(`/v1/jobs/${id}/webhooks`)).body.events[0]).toMatchObject({
      id: event!.id,
      status: "pending",
      attempts: 0,
    });
    expect(await stack.worker!.webhooks!.sweepOnce(0)).toBe(1);
    const record = await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
    expect(record.attempts).toHaveLength(1);
    expect(receiver.hits("/swept")).toHaveLength(1);
    // Recording the same event again is a no-op (its id is derived from the job and the type).
    expect(
      await recordJobEvents(new WebhookEventStore(db.pool), [
        { id, tenantId: rows[0]!.tenantId, status: "succeeded", model: "iris", webhook: { url } },
      ]),
    ).toEqual([]);
  });
});

describe("the sweep, when the queue lost or stalled an entry", () => {
  it("brings forward an entry delayed past its event's next attempt (a backoff that outlived an outage)", async () => {
    const url = receiver.on("/late", () => ({ status: 200 }));
    const id = await submit(stack.alpha, undefined);
    expect((await stack.alpha.get(`/v1/jobs/${id}?wait=10`)).body.status).toBe("succeeded");
    const { rows } = await db.pool.query<{ tenantId: string }>(`select "tenantId" from jobs where id = $1`, [id]);
    const [event] = await recordJobEvents(new WebhookEventStore(db.pool), [
      { id, tenantId: rows[0]!.tenantId, status: "succeeded", model: "iris", webhook: { url } },
    ]);
    const redis = createRedis(testRedisUrl());
    const queue = new WebhookQueue(redis, stack.prefix);
    try {
      await queue.queue.add(
        "deliver",
        { eventId: event!.id },
        { ...WebhookQueue.entryOptions, jobId: event!.id, delay: 600_000 },
      );
      expect(await queue.queue.getJobState(event!.id)).toBe("delayed");
      expect(await stack.worker!.webhooks!.sweepOnce(0)).toBe(0); // nothing re-added: the entry is there
      await webhooksOf(id, (r) => r.events[0]?.status === "delivered");
      expect(receiver.hits("/late")).toHaveLength(1);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});

describe("job.canceled", () => {
  it("fires job.canceled from the API when a queued job is canceled", async () => {
    const url = receiver.on("/canceled", () => ({ status: 200 }));
    await stack.stopWorker();
    let id: string;
    try {
      id = await submit(stack.alpha, { url, events: ["job.canceled"] });
      expect((await stack.alpha.post(`/v1/jobs/${id}/cancel`)).body.status).toBe("canceled");
    } finally {
      await stack.startWorker();
    }
    const [hit] = await sleepUntil(() =>
      receiver.hits("/canceled").length > 0 ? receiver.hits("/canceled") : undefined,
    );
    const payload = verify(await secretOf(stack.alpha), hit!) as { type: string; data: unknown };
    expect(payload.type).toBe("job.canceled");
    expect(payload.data).toEqual((await stack.alpha.get(`/v1/jobs/${id!}`)).body);
    await webhooksOf(id!, (r) => r.events[0]?.status === "delivered");
  });
});

describe("limits at delivery time", () => {
  it("refuses a target that resolves to loopback when the worker's switch is off: a recorded failure, no connection", async () => {
    const url = receiver.on("/ssrf-delivery", () => ({ status: 200 }));
    await withWorker({ WEBHOOK_ALLOW_PRIVATE: "false" }, async () => {
      const id = await submit(stack.alpha, { url }); // the API still allows it
      const record = await webhooksOf(id, (r) => r.events[0]?.status === "failed");
      expect(record.attempts).toHaveLength(3);
      for (const a of record.attempts) {
        expect(a.error).toMatch(/^refused: the webhook target 127\.0\.0\.1 is a loopback address/);
        expect(a.statusCode).toBeNull();
      }
      expect(receiver.hits("/ssrf-delivery")).toHaveLength(0);
    });
  });

  it("never sends a body over WEBHOOK_MAX_BODY_BYTES: a recorded failure, not retried", async () => {
    const url = receiver.on("/too-big", () => ({ status: 200 }));
    await withWorker({ WEBHOOK_MAX_BODY_BYTES: "200" }, async () => {
      const id = await submit(stack.alpha, { url });
      const record = await webhooksOf(id, (r) => r.events[0]?.status === "failed");
      expect(record.attempts).toHaveLength(1);
      expect(record.attempts[0].error).toMatch(/^payload of \d+ bytes exceeds the limit of 200 bytes; not sent$/);
      expect(receiver.hits("/too-big")).toHaveLength(0);
    });
  });
});

describe("SSRF guard at submit", () => {
  let guarded: TestStack;
  beforeAll(async () => {
    guarded = await startStack({ worker: false }); // WEBHOOK_ALLOW_PRIVATE unset: the default, off
  });
  afterAll(async () => {
    await guarded?.close();
  });

  it.each([
    ["http://127.0.0.1:PORT/ssrf-submit", /127\.0\.0\.1 is a loopback address/],
    ["http://10.0.0.1/hook", /10\.0\.0\.1 is a private \(RFC 1918\) address/],
    ["http://169.254.169.254/latest/meta-data/", /169\.254\.169\.254 is a cloud metadata address/],
    ["http://[::1]:PORT/ssrf-submit", /::1 is a loopback address/],
    ["http://localhost:PORT/ssrf-submit", /localhost resolves to .* loopback address/],
  ])("refuses %s with a 422 naming /webhook/url", async (template, reason) => {
    const url = template.replace("PORT", new URL(receiver.url).port);
    const res = await guarded.alpha.post("/v1/jobs", irisJob(undefined, { webhook: { url } }));
    expect(res.status).toBe(422);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors).toEqual([{ path: "/webhook/url", message: expect.stringMatching(reason) }]);
    expect((await guarded.alpha.get("/v1/jobs")).body.jobs).toEqual([]);
    expect(receiver.hits("/ssrf-submit")).toHaveLength(0);
  });

  it("refuses a scheme other than http(s)", async () => {
    const res = await guarded.alpha.post(
      "/v1/jobs",
      irisJob(undefined, { webhook: { url: "ftp://example.com/hook" } }),
    );
    expect(res.status).toBe(422);
    expect(res.body.errors[0].path).toBe("/webhook/url");
  });
});

describe("batch.completed", () => {
  it("fires once when the last item of a batch finishes, with the batch as GET /v1/batches/:id shows it", async () => {
    const url = receiver.on("/batch-done", () => ({ status: 200 }));
    const items = Array.from({ length: 40 }, () => ({ inputs: irisJob().inputs }));
    const created = await stack.alpha.post("/v1/batches", { model: "iris", items, webhook: { url } });
    expect(created.status).toBe(202);
    const [hit] = await sleepUntil(
      () => (receiver.hits("/batch-done").length > 0 ? receiver.hits("/batch-done") : undefined),
      { timeoutMs: 15_000 },
    );
    const body = JSON.parse(hit!.body);
    expect(WebhookPayload.parse(body)).toEqual(body);
    expect(body.type).toBe("batch.completed");
    expect(body.data).toMatchObject({
      id: created.body.id,
      status: "completed",
      total: 40,
      counts: { succeeded: 40, queued: 0, running: 0 },
    });
    // Item jobs carry no webhook of their own: only the batch event is sent.
    expect(receiver.hits("/batch-done")).toHaveLength(1);
  });

  it("fires with status canceled when a cancel finishes the batch", async () => {
    const url = receiver.on("/batch-canceled", () => ({ status: 200 }));
    await stack.stopWorker();
    try {
      // An item that waits for a worker (bypass: the result cache would complete the batch at once).
      const created = await stack.alpha.post("/v1/batches", {
        model: "iris",
        items: [{ inputs: irisJob().inputs }],
        webhook: { url },
        cache: "bypass",
      });
      expect((await stack.alpha.post(`/v1/batches/${created.body.id}/cancel`)).status).toBe(200);
    } finally {
      await stack.startWorker();
    }
    const [hit] = await sleepUntil(
      () => (receiver.hits("/batch-canceled").length > 0 ? receiver.hits("/batch-canceled") : undefined),
      { timeoutMs: 15_000 },
    );
    expect(JSON.parse(hit!.body)).toMatchObject({
      type: "batch.completed",
      data: { status: "canceled", counts: { canceled: 1 } },
    });
  });
});

describe("crash safety", () => {
  it("a result and its event commit together: a failed event insert rolls the result back, and the retry writes both", async () => {
    const url = receiver.on("/atomic", () => ({ status: 200 }));
    await db.pool.query(`create sequence event_fault_seq;
      create or replace function event_fault() returns trigger language plpgsql as $$
      begin
        if new.url like '%/atomic' and nextval('event_fault_seq') = 1 then raise exception 'injected fault recording the event'; end if;
        return new;
      end $$;
      create trigger event_fault before insert on webhook_events for each row execute function event_fault();`);
    try {
      const id = await submit(stack.alpha, { url });
      const done = await sleepUntil(
        async () => {
          const job = (await stack.alpha.get(`/v1/jobs/${id}?wait=5`)).body;
          return job.status === "succeeded" ? job : undefined;
        },
        { timeoutMs: 20_000 },
      );
      // The first attempt's result did not survive without its event: the job ran twice.
      expect(done.attempts).toBe(2);
      await sleepUntil(() => receiver.hits("/atomic").length === 1, { timeoutMs: 15_000 });
    } finally {
      await db.pool.query("drop trigger event_fault on webhook_events");
    }
  });
});
