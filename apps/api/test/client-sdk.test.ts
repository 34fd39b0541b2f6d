import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferlineClient, InferlineConnectionError, InferlineError, verifyWebhook, WebhookVerificationError, type BatchItemInput, type JobSubmissionInput, type Tensor } from "@inferline/client";
import { ApiClient, freePort, IRIS_SAMPLES, sleepUntil } from "@inferline/testing";
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
  stack = await startStack({ api: { WEBHOOK_ALLOW_PRIVATE: "true" }, workerEnv: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_SWEEP_INTERVAL_MS: "0" } });
  proxy = await new FaultProxy(stack.api.url).start();
});
afterAll(async () => {
  await proxy?.close();
  await stack?.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

const SPECIES = ["setosa", "versicolor", "virginica"] as const;
const features = (rows: ReadonlyArray<readonly number[]>): Tensor => ({ name: "features", datatype: "FP32", shape: [rows.length, 4], data: rows.flat() });
const irisSubmission = (extra: Partial<JobSubmissionInput> = {}): JobSubmissionInput => ({ model: "iris", inputs: [features([IRIS_SAMPLES.setosa])], cache: "bypass", ...extra });
/** Item i is a sample of species i % 3, so each result line's label shows whether it is in its place. */
const item = (i: number): BatchItemInput => ({ customId: `row-${i}`, inputs: [features([IRIS_SAMPLES[SPECIES[i % 3]!]])] });

/** A client of a tenant of its own (so that its job counts are the test's alone), direct or through the proxy. */
async function tenantClient(name: string, via: "api" | "proxy" = "api"): Promise<InferlineClient> {
  return new InferlineClient({ baseUrl: via === "api" ? stack.api.url : proxy.url, apiKey: await stack.createKey(name), maxRetryDelayMs: 2000 });
}

async function allJobs(client: InferlineClient): Promise<string[]> {
  const ids: string[] = [];
  for await (const job of client.jobs.list()) ids.push(job.id);
  return ids;
}

describe("jobs", () => {
  it("submits, waits until the job is terminal, and gets it", async () => {
    const client = await tenantClient("jobs");
    const submitted = await client.jobs.submit(irisSubmission({ metadata: { customer: "c-1" } }));
    expect(submitted).toMatchObject({ status: "queued", model: "iris", metadata: { customer: "c-1" } });
    const done = await client.jobs.wait(submitted.id, { timeoutSeconds: 20 });
    expect(done.status).toBe("succeeded");
    expect(done.result?.classifications?.[0]?.label).toBe("setosa");
    expect(await client.jobs.get(submitted.id)).toEqual(done);
  });

  it("iterates every job across pages", async () => {
    const client = await tenantClient("pages");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.jobs.submit(irisSubmission())).id);
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
      const job = await client.jobs.submit(irisSubmission());
      expect((await client.jobs.wait(job.id, { timeoutSeconds: 1 })).status).toBe("queued");
      expect((await client.jobs.cancel(job.id)).status).toBe("canceled");
      expect((await client.jobs.get(job.id)).status).toBe("canceled");
      const again = await client.jobs.cancel(job.id).catch((err: unknown) => err);
      expect(again).toBeInstanceOf(InferlineError);
      expect((again as InferlineError).status).toBe(409);

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
    expect(lines.map((l) => l.result?.classifications?.[0]?.label)).toEqual(Array.from({ length: 30 }, (_, i) => SPECIES[i % 3]));
    expect((await client.batches.get(batch.id)).counts.succeeded).toBe(30);
  });

  it("sends a header the query cannot carry (metadata) as a JSON body", async () => {
    const client = await tenantClient("batch-json");
    const batch = await client.batches.create([item(0), item(1), item(2)], { model: "iris", metadata: { run: "nightly" } });
    await client.batches.wait(batch.id, { timeoutSeconds: 30 });
    const page = await client.jobs.page({ batchId: batch.id });
    expect(page.jobs.map((j) => j.metadata)).toEqual([{ run: "nightly" }, { run: "nightly" }, { run: "nightly" }]);
    // A stream cannot: its settings travel in the query string.
    await expect(client.batches.create((async function* () {})(), { model: "iris", metadata: { run: "x" } })).rejects.toThrow(TypeError);
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

describe("models", () => {
  it("lists the models and reads one; an unknown one is a 404 InferlineError", async () => {
    const client = await tenantClient("models");
    expect((await client.models.list()).map((m) => m.name)).toContain("iris");
    const iris = await client.models.get("iris");
    expect(iris).toMatchObject({ name: "iris", versions: ["1"], defaultVersion: "1" });
    expect(iris.inputs[0]).toMatchObject({ name: "features", datatype: "FP32", shape: [-1, 4] });
    await expect(client.models.get("no-such-model")).rejects.toMatchObject({ name: "InferlineError", status: 404 });
  });
});

describe("verifyWebhook", () => {
  /** The first delivery to `path`, once it has arrived. */
  const deliveryTo = (path: string) => sleepUntil(() => deliveries.find((d) => d.path === path), { message: `a webhook delivery to ${path}` });

  it("verifies a real delivery, refuses a tampered body and a wrong secret, and accepts either secret during a rotation", async () => {
    const key = await stack.createKey("hooks");
    const client = new InferlineClient({ baseUrl: stack.api.url, apiKey: key });
    const admin = new ApiClient(stack.api.url, key);
    const oldSecret = (await admin.get("/v1/webhooks/secret")).body.secret as string;
    const otherSecret = (await stack.alpha.get("/v1/webhooks/secret")).body.secret as string;

    const job = await client.jobs.submit(irisSubmission({ webhook: { url: `${receiverUrl}/first` } }));
    const first = await deliveryTo("/first");
    const event = verifyWebhook(oldSecret, first.headers, first.body);
    expect(event.type).toBe("job.succeeded");
    expect(event.data).toEqual(await client.jobs.get(job.id));
    expect(() => verifyWebhook(oldSecret, first.headers, first.body.replace('"succeeded"', '"failed"'))).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(otherSecret, first.headers, first.body)).toThrow(WebhookVerificationError);
    // A Fetch API Headers object and a Buffer body work the same.
    const fetchHeaders = new Headers(Object.entries(first.headers).map(([k, v]) => [k, String(v)]));
    expect(verifyWebhook([otherSecret, oldSecret], fetchHeaders, Buffer.from(first.body)).type).toBe("job.succeeded");

    const newSecret = (await admin.post("/v1/webhooks/secret/rotate", {})).body.secret as string;
    expect(newSecret).not.toBe(oldSecret);
    await client.jobs.submit(irisSubmission({ webhook: { url: `${receiverUrl}/rotated` } }));
    const rotated = await deliveryTo("/rotated");
    expect(String(rotated.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const secrets of [oldSecret, newSecret, [otherSecret, newSecret]]) expect(verifyWebhook(secrets, rotated.headers, rotated.body).type).toBe("job.succeeded");
    expect(() => verifyWebhook(otherSecret, rotated.headers, rotated.body)).toThrow(WebhookVerificationError);
  });
});

describe("retries", () => {
  const problem = (status: number, code: string) => JSON.stringify({ type: "about:blank", title: "x", status, detail: "injected by the test proxy", code });

  it("retries a submit answered 503 with Retry-After under the same Idempotency-Key: one job", async () => {
    const client = await tenantClient("retry-503", "proxy");
    proxy.when((r) => (r.method === "POST" && r.n === 1 ? { status: 503, headers: { "retry-after": "1", "content-type": "application/problem+json" }, body: problem(503, "queue_full") } : "forward"));
    const job = await client.jobs.submit(irisSubmission());
    const posts = proxy.requests("POST", "/v1/jobs");
    expect(posts).toHaveLength(2);
    expect(posts[0]!.headers["idempotency-key"]).toEqual(expect.any(String));
    expect(posts[1]!.headers["idempotency-key"]).toBe(posts[0]!.headers["idempotency-key"]);
    expect(await allJobs(client)).toEqual([job.id]);
  });

  it("retries a submit whose answer was lost with the connection: the API replays the first job, none is doubled", async () => {
    const client = await tenantClient("retry-drop", "proxy");
    proxy.when((r) => (r.method === "POST" && r.n === 1 ? "drop-after-forward" : "forward"));
    const job = await client.jobs.submit(irisSubmission(), { idempotencyKey: "order-42" });
    const posts = proxy.requests("POST", "/v1/jobs");
    expect(posts.map((p) => p.headers["idempotency-key"])).toEqual(["order-42", "order-42"]);
    expect(await allJobs(client)).toEqual([job.id]);
  });

  it("does not retry a 422, and its error names the field", async () => {
    const client = await tenantClient("no-retry-422", "proxy");
    proxy.when(() => "forward");
    const err = await client.jobs.submit({ ...irisSubmission(), priorty: "high" } as JobSubmissionInput).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferlineError);
    expect(err).toMatchObject({ status: 422, code: "validation_failed", errors: [expect.objectContaining({ path: "/priorty" })] });
    expect((err as Error).message).toContain("/priorty");
    expect(proxy.requests("POST", "/v1/jobs")).toHaveLength(1);
  });

  it("retries a batch from an array after a 429, but sends a streamed batch once", async () => {
    const client = await tenantClient("retry-batch", "proxy");
    const busy = { status: 429, headers: { "retry-after": "1", "content-type": "application/problem+json" }, body: problem(429, "rate_limited") };
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
    expect(streamed).toMatchObject({ name: "InferlineError", status: 429, code: "rate_limited", retryAfterSeconds: 1, retryable: true });
    expect(proxy.requests("POST", "/v1/batches")).toHaveLength(1);
  });

  it("gives up on an unreachable API with an InferlineConnectionError after its retries", async () => {
    const client = new InferlineClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: "il_unused", retries: 2, maxRetryDelayMs: 50 });
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferlineConnectionError);
    expect(err).toMatchObject({ attempts: 3 });
    expect((err as Error).message).toContain("ECONNREFUSED");
  });
});
