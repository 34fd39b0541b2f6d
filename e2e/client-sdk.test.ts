import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConflictError,
  ConnectionError,
  InferlineClient,
  JobFailedError,
  NotFoundError,
  RateLimitError,
  ValidationError,
  verifyWebhook,
  WebhookVerificationError,
  type BatchItemInput,
  type JobSubmissionInput,
  type Tensor,
} from "@inferline/client";
import { freePort, IRIS_SAMPLES, sleepUntil } from "@inferline/testing";
import { FaultProxy } from "./support/fault-proxy.ts";
import { startStack, type TestStack } from "./support/stack.ts";

// @inferline/client against a real API and worker: jobs, pages, cancels, batches from an array
// and from an async generator, models, webhook verification of a real delivery, and retries
// through a fault-injecting proxy.

/** A delivered webhook as the loopback receiver saw it. */
interface Delivery {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let stack: TestStack;
let proxy: FaultProxy;
let receiverUrl: string;
const deliveries: Delivery[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    deliveries.push({ path: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(204).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  stack = await startStack({
    api: { WEBHOOK_ALLOW_PRIVATE: "true" },
    workerEnv: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_SWEEP_INTERVAL_MS: "0" },
  });
  proxy = await new FaultProxy(stack.api.url).start();
});
afterAll(async () => {
  await proxy?.close();
  await stack?.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

const SPECIES = ["setosa", "versicolor", "virginica"] as const;
const features = (rows: ReadonlyArray<readonly number[]>): Tensor => ({
  name: "features",
  datatype: "FP32",
  shape: [rows.length, 4],
  data: rows.flat(),
});
const irisSubmission = (extra: Partial<JobSubmissionInput> = {}): JobSubmissionInput => ({
  model: "iris",
  inputs: [features([IRIS_SAMPLES.setosa])],
  cache: "bypass",
  ...extra,
});
/** Item i is a sample of species i % 3, so each result line's label shows whether it is in its place. */
const item = (i: number): BatchItemInput => ({
  customId: `row-${i}`,
  inputs: [features([IRIS_SAMPLES[SPECIES[i % 3]!]])],
});

/** A client of a tenant of its own (so that its job counts are the test's alone), direct or through the proxy. */
async function tenantClient(name: string, via: "api" | "proxy" = "api"): Promise<InferlineClient> {
  return new InferlineClient({
    baseUrl: via === "api" ? stack.api.url : proxy.url,
    apiKey: await stack.createKey(name),
    maxRetryDelayMs: 2000,
  });
}

async function allJobs(client: InferlineClient): Promise<string[]> {
  const ids: string[] = [];
  for await (const job of client.jobs.list()) ids.push(job.id);
  return ids;
}

describe("jobs", () => {
  it("submits, waits until the job is terminal, and gets it", async () => {
    const client = await tenantClient("jobs");
    const submitted = await client.jobs.create(irisSubmission({ metadata: { customer: "c-1" } }));
    expect(submitted).toMatchObject({ status: "queued", model: "iris", metadata: { customer: "c-1" } });
    const done = await client.jobs.wait(submitted.id, { timeoutSeconds: 20 });
    expect(done.status).toBe("succeeded");
    expect(done.result?.classifications?.[0]?.label).toBe("setosa");
    expect(await client.jobs.get(submitted.id)).toEqual(done);
  });

  it("keeps submit as a deprecated name of create", async () => {
    const client = await tenantClient("submit-alias");
    const job = await client.jobs.submit(irisSubmission(), { idempotencyKey: "alias-1" });
    // The same key answers the same job (as it is now: a worker may have started it meanwhile).
    const again = await client.jobs.create(irisSubmission(), { idempotencyKey: "alias-1" });
    expect({ id: again.id, createdAt: again.createdAt }).toEqual({ id: job.id, createdAt: job.createdAt });
  });

  it("iterates every job across pages", async () => {
    const client = await tenantClient("pages");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.jobs.create(irisSubmission())).id);
    const first = await client.jobs.page({ limit: 2 });
    expect(first.jobs).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const seen: string[] = [];
    for await (const job of client.jobs.list({ model: "iris", limit: 2 })) seen.push(job.id);
    // Newest first; jobs created in the same millisecond may come in either order.
    expect(seen).toHaveLength(5);
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it("cancels a queued job and a queued batch; wait with a deadline returns the job unfinished", async () => {
    const client = await tenantClient("cancels");
    await stack.stopWorker();
    try {
      const job = await client.jobs.create(irisSubmission());
      expect((await client.jobs.wait(job.id, { timeoutSeconds: 1 })).status).toBe("queued");
      expect((await client.jobs.cancel(job.id)).status).toBe("canceled");
      expect((await client.jobs.get(job.id)).status).toBe("canceled");
      const again = await client.jobs.cancel(job.id).catch((err: unknown) => err);
      expect(again).toBeInstanceOf(ConflictError);
      expect((again as ConflictError).status).toBe(409);

      const batch = await client.batches.create([item(0), item(1)], { model: "iris" });
      const canceled = await client.batches.cancel(batch.id);
      expect(canceled.status).toBe("canceled");
      expect(canceled.counts.canceled).toBe(2);
    } finally {
      await stack.startWorker();
    }
  });
});

describe("batches", () => {
  it("creates a batch from an array and streams its results in submission order", async () => {
    const client = await tenantClient("batch-array");
    const batch = await client.batches.create(
      Array.from({ length: 30 }, (_, i) => item(i)),
      { model: "iris", cache: "bypass" },
    );
    expect(batch).toMatchObject({ model: "iris", total: 30 });
    expect((await client.batches.wait(batch.id, { timeoutSeconds: 30 })).status).toBe("completed");
    const lines = [];
    for await (const line of client.batches.results(batch.id)) lines.push(line);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(lines.map((l) => l.customId)).toEqual(Array.from({ length: 30 }, (_, i) => `row-${i}`));
    expect(lines.map((l) => l.result?.classifications?.[0]?.label)).toEqual(
      Array.from({ length: 30 }, (_, i) => SPECIES[i % 3]),
    );
    expect((await client.batches.get(batch.id)).counts.succeeded).toBe(30);
  });

  it("lists batches newest first, page by page, filtered by status", async () => {
    const client = await tenantClient("batch-list");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.batches.create([item(i)], { model: "iris" })).id);
    for (const id of ids) await client.batches.wait(id, { timeoutSeconds: 20 });
    const first = await client.batches.page({ limit: 2 });
    expect(first.batches.map((b) => b.id)).toEqual([ids[2], ids[1]]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const listed = async (filter: Parameters<typeof client.batches.list>[0]) => {
      const found: string[] = [];
      for await (const batch of client.batches.list(filter)) found.push(batch.id);
      return found;
    };
    expect(await listed({ limit: 1 })).toEqual([...ids].reverse());
    expect(await listed({ status: "completed" })).toEqual([...ids].reverse());
    expect(await listed({ status: "canceled" })).toEqual([]);
  });

  it("sends a header the query cannot carry (metadata) as a JSON body", async () => {
    const client = await tenantClient("batch-json");
    const batch = await client.batches.create([item(0), item(1), item(2)], {
      model: "iris",
      metadata: { run: "nightly" },
    });
    await client.batches.wait(batch.id, { timeoutSeconds: 30 });
    const page = await client.jobs.page({ batchId: batch.id });
    expect(page.jobs.map((j) => j.metadata)).toEqual([{ run: "nightly" }, { run: "nightly" }, { run: "nightly" }]);
    // A stream cannot: its settings travel in the query string.
    await expect(
      client.batches.create((async function* () {})(), { model: "iris", metadata: { run: "x" } }),
    ).rejects.toThrow(TypeError);
  });

  it("streams a batch from an async generator, across several stored chunks, results in order", async () => {
    const client = await tenantClient("batch-stream");
    const count = 1200; // three chunks of 512
    let produced = 0;
    async function* items() {
      for (let i = 0; i < count; i++) {
        produced++;
        yield item(i);
      }
    }
    const batch = await client.batches.create(items(), { model: "iris", cache: "bypass" });
    expect(produced).toBe(count);
    expect(batch.total).toBe(count);
    await client.batches.wait(batch.id, { timeoutSeconds: 60 });
    let next = 0;
    for await (const line of client.batches.results(batch.id)) {
      expect(line.index).toBe(next);
      expect(line.status).toBe("succeeded");
      expect(line.result?.classifications?.[0]?.label).toBe(SPECIES[next % 3]);
      next++;
    }
    expect(next).toBe(count);
  });
});

describe("run", () => {
  it("creates a job, waits for it and answers its result", async () => {
    const client = await tenantClient("run");
    const result = await client.run("iris", [features([IRIS_SAMPLES.virginica])], {
      cache: "bypass",
      metadata: { via: "run" },
    });
    expect(result.classifications?.[0]?.label).toBe("virginica");
    const [job] = await allJobs(client);
    expect((await client.jobs.get(job!)).metadata).toEqual({ via: "run" });
  });

  it("throws JobFailedError with the job when it fails", async () => {
    const client = await tenantClient("run-fails");
    // Index 99 is past the lookup table: the model's Gather refuses it at run time.
    const err = await client
      .run("lookup", [{ name: "index", datatype: "INT64", shape: [1, 1], data: [99] }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err).toMatchObject({ job: { status: "failed", model: "lookup" }, code: expect.any(String) });
    expect((err as JobFailedError).code).toBe((err as JobFailedError).job.error?.code);
  });

  it("cancels a job not finished within timeoutSeconds, and one whose signal aborts", async () => {
    const client = await tenantClient("run-deadline");
    await stack.stopWorker();
    try {
      const late = await client
        .run("iris", [features([IRIS_SAMPLES.setosa])], { timeoutSeconds: 1 })
        .catch((e: unknown) => e);
      expect(late).toBeInstanceOf(JobFailedError);
      expect(late).toMatchObject({ code: "canceled", job: { status: "canceled" } });
      expect((late as Error).message).toContain("not finished within 1 s");

      const abort = new AbortController();
      const running = client.run("iris", [features([IRIS_SAMPLES.setosa])], { signal: abort.signal });
      const job = await sleepUntil(async () => (await client.jobs.page({ status: "queued" })).jobs[0], {
        message: "run() to create its job",
      });
      abort.abort(new Error("the caller left"));
      await expect(running).rejects.toThrow("the caller left");
      expect((await client.jobs.get(job.id)).status).toBe("canceled");
    } finally {
      await stack.startWorker();
    }
  });
});

describe("models", () => {
  it("lists the models and reads one; an unknown one is a 404 NotFoundError", async () => {
    const client = await tenantClient("models");
    expect((await client.models.list()).map((m) => m.name)).toContain("iris");
    const iris = await client.models.get("iris");
    expect(iris).toMatchObject({ name: "iris", versions: ["1"], defaultVersion: "1" });
    expect(iris.inputs[0]).toMatchObject({ name: "features", datatype: "FP32", shape: [-1, 4] });
    await expect(client.models.get("no-such-model")).rejects.toMatchObject({ name: "NotFoundError", status: 404 });
    await expect(client.models.get("no-such-model")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reads the model's queue: the caller's queued work and the model's depth", async () => {
    const client = await tenantClient("queue");
    await stack.stopWorker();
    try {
      await client.jobs.create(irisSubmission());
      expect(await client.models.queue("iris")).toMatchObject({
        model: "iris",
        tenant: { queued: 1, running: 0 },
        depth: expect.any(Number),
      });
    } finally {
      await stack.startWorker();
    }
  });
});

describe("verifyWebhook", () => {
  /** The first delivery to `path`, once it has arrived. */
  const deliveryTo = (path: string) =>
    sleepUntil(() => deliveries.find((d) => d.path === path), { message: `a webhook delivery to ${path}` });

  it("verifies a real delivery, refuses a tampered body and a wrong secret, and accepts either secret during a rotation", async () => {
    const client = await tenantClient("hooks");
    const oldSecret = (await client.webhooks.secret()).secret;
    const otherSecret = (await stack.alpha.get("/v1/webhooks/secret")).body.secret as string;

    const job = await client.jobs.create(irisSubmission({ webhook: { url: `${receiverUrl}/first` } }));
    const first = await deliveryTo("/first");
    const event = verifyWebhook(oldSecret, first.headers, first.body);
    expect(event.type).toBe("job.succeeded");
    expect(event.data).toEqual(await client.jobs.get(job.id));
    expect(() => verifyWebhook(oldSecret, first.headers, first.body.replace('"succeeded"', '"failed"'))).toThrow(
      WebhookVerificationError,
    );
    expect(() => verifyWebhook(otherSecret, first.headers, first.body)).toThrow(WebhookVerificationError);
    // A Fetch API Headers object and a Buffer body work the same.
    const fetchHeaders = new Headers(Object.entries(first.headers).map(([k, v]) => [k, String(v)]));
    expect(verifyWebhook([otherSecret, oldSecret], fetchHeaders, Buffer.from(first.body)).type).toBe("job.succeeded");

    const rotation = await client.webhooks.rotateSecret();
    const newSecret = rotation.secret;
    expect(newSecret).not.toBe(oldSecret);
    expect(rotation.previousSecretExpiresAt).toEqual(expect.any(String));
    expect((await client.webhooks.secret()).secret).toBe(newSecret);
    await client.jobs.create(irisSubmission({ webhook: { url: `${receiverUrl}/rotated` } }));
    const rotated = await deliveryTo("/rotated");
    expect(String(rotated.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const secrets of [oldSecret, newSecret, [otherSecret, newSecret]])
      expect(verifyWebhook(secrets, rotated.headers, rotated.body).type).toBe("job.succeeded");
    expect(() => verifyWebhook(otherSecret, rotated.headers, rotated.body)).toThrow(WebhookVerificationError);
  });

  it("reads a job's deliveries and redelivers its event under the same webhook-id", async () => {
    const client = await tenantClient("redeliver");
    const job = await client.jobs.create(irisSubmission({ webhook: { url: `${receiverUrl}/redeliver` } }));
    const first = await deliveryTo("/redeliver");
    const record = await sleepUntil(async () => {
      const r = await client.webhooks.deliveries(job.id);
      return r.events[0]?.status === "delivered" ? r : undefined;
    });
    expect(record.events).toEqual([
      expect.objectContaining({ id: first.headers["webhook-id"], type: "job.succeeded", attempts: 1 }),
    ]);
    expect(record.attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 204 })]);

    const redelivery = await client.webhooks.redeliver(job.id);
    expect(redelivery).toMatchObject({ eventId: first.headers["webhook-id"], status: "queued", redeliveries: 1 });
    await sleepUntil(async () => (await client.webhooks.deliveries(job.id)).attempts.length === 2, {
      message: "the redelivery's attempt",
    });
    expect(deliveries.filter((d) => d.path === "/redeliver").map((d) => d.headers["webhook-id"])).toEqual([
      first.headers["webhook-id"],
      first.headers["webhook-id"],
    ]);
    await expect(client.webhooks.deliveries("00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
});

describe("retries", () => {
  const problem = (status: number, code: string) =>
    JSON.stringify({ type: "about:blank", title: "x", status, detail: "injected by the test proxy", code });

  it("retries a submit answered 503 with Retry-After under the same Idempotency-Key: one job", async () => {
    const client = await tenantClient("retry-503", "proxy");
    proxy.when((r) =>
      r.method === "POST" && r.n === 1
        ? {
            status: 503,
            headers: { "retry-after": "1", "content-type": "application/problem+json" },
            body: problem(503, "queue_full"),
          }
        : "forward",
    );
    const job = await client.jobs.create(irisSubmission());
    const posts = proxy.requests("POST", "/v1/jobs");
    expect(posts).toHaveLength(2);
    expect(posts[0]!.headers["idempotency-key"]).toEqual(expect.any(String));
    expect(posts[1]!.headers["idempotency-key"]).toBe(posts[0]!.headers["idempotency-key"]);
    expect(await allJobs(client)).toEqual([job.id]);
  });

  it("retries a submit whose answer was lost with the connection: the API replays the first job, none is doubled", async () => {
    const client = await tenantClient("retry-drop", "proxy");
    proxy.when((r) => (r.method === "POST" && r.n === 1 ? "drop-after-forward" : "forward"));
    const job = await client.jobs.create(irisSubmission(), { idempotencyKey: "order-42" });
    const posts = proxy.requests("POST", "/v1/jobs");
    expect(posts.map((p) => p.headers["idempotency-key"])).toEqual(["order-42", "order-42"]);
    expect(await allJobs(client)).toEqual([job.id]);
  });

  it("does not retry a 422, and its error names the field", async () => {
    const client = await tenantClient("no-retry-422", "proxy");
    proxy.when(() => "forward");
    const err = await client.jobs
      .create({ ...irisSubmission(), priorty: "high" } as JobSubmissionInput)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({
      status: 422,
      code: "validation_failed",
      errors: [expect.objectContaining({ path: "/priorty" })],
    });
    expect((err as Error).message).toContain("/priorty");
    expect(proxy.requests("POST", "/v1/jobs")).toHaveLength(1);
  });

  it("retries a batch from an array after a 429, but sends a streamed batch once", async () => {
    const client = await tenantClient("retry-batch", "proxy");
    const busy = {
      status: 429,
      headers: { "retry-after": "1", "content-type": "application/problem+json" },
      body: problem(429, "rate_limited"),
    };
    proxy.when((r) => (r.method === "POST" && r.n === 1 ? busy : "forward"));
    const batch = await client.batches.create([item(0), item(1)], { model: "iris" });
    expect(proxy.requests("POST", "/v1/batches")).toHaveLength(2);
    expect(batch.total).toBe(2);

    proxy.when((r) => (r.method === "POST" && r.n === 1 ? busy : "forward"));
    const streamed = await client.batches
      .create(
        (async function* () {
          yield item(0);
        })(),
        { model: "iris" },
      )
      .catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(RateLimitError);
    expect(streamed).toMatchObject({
      name: "RateLimitError",
      status: 429,
      code: "rate_limited",
      retryAfterSeconds: 1,
      retryable: true,
    });
    expect(proxy.requests("POST", "/v1/batches")).toHaveLength(1);
  });

  it("gives up on an unreachable API with a ConnectionError after its retries", async () => {
    const client = new InferlineClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      apiKey: "il_unused",
      maxRetries: 2,
      maxRetryDelayMs: 50,
    });
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ attempts: 3 });
    expect((err as Error).message).toContain("ECONNREFUSED");
  });
});
