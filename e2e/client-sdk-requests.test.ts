import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  ConflictError,
  InferlineAPIError,
  InferlineClient,
  NotFoundError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
  ValidationError,
  VERSION,
  type ClientOptions,
  type JobSubmissionInput,
} from "@inferline/client";
import { IRIS_SAMPLES } from "@inferline/testing";
import { FaultProxy, type ProxyAction } from "./support/fault-proxy.ts";
import { startStack, type TestStack } from "./support/stack.ts";

// @inferline/client's requests against a real API, through a fault-injecting proxy: the error
// class of each kind of refusal, which failures are retried for which requests, per-call options,
// the environment's settings and the User-Agent.

let stack: TestStack;
let proxy: FaultProxy;
beforeAll(async () => {
  stack = await startStack();
  proxy = await new FaultProxy(stack.api.url).start();
});
afterAll(async () => {
  await proxy?.close();
  await stack?.close();
});

const job: JobSubmissionInput = {
  model: "iris",
  inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [...IRIS_SAMPLES.setosa] }],
  cache: "bypass",
};
const problem = (status: number, code: string): ProxyAction => ({
  status,
  headers: { "content-type": "application/problem+json" },
  body: JSON.stringify({ type: "about:blank", title: "x", status, detail: "injected by the test proxy", code }),
});

/** A client of a tenant of its own through the proxy, with short backoffs. */
async function proxied(name: string, options: ClientOptions = {}): Promise<InferlineClient> {
  return new InferlineClient({
    baseUrl: proxy.url,
    apiKey: await stack.createKey(name),
    maxRetryDelayMs: 100,
    ...options,
  });
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );

describe("errors", () => {
  it("throws a subclass of InferlineAPIError for each kind of refusal", async () => {
    const client = await proxied("kinds", { maxRetries: 0 });
    proxy.when(() => "forward");
    const wrongKey = new InferlineClient({ baseUrl: proxy.url, apiKey: "il_not-a-key" });
    expect(await failure(wrongKey.models.list())).toBeInstanceOf(AuthenticationError);
    expect(await failure(client.jobs.get("00000000-0000-4000-8000-000000000000"))).toBeInstanceOf(NotFoundError);
    const invalid = await failure(client.jobs.create({ ...job, inputs: [] }));
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid).toMatchObject({
      status: 422,
      code: "validation_failed",
      errors: [expect.objectContaining({ path: "/inputs" })],
    });
    const done = await client.jobs.wait((await client.jobs.create(job)).id, { timeoutSeconds: 20 });
    expect(await failure(client.jobs.cancel(done.id))).toBeInstanceOf(ConflictError);

    for (const [status, Kind, code] of [
      [429, RateLimitError, "rate_limited"],
      [503, UnavailableError, "queue_full"],
      [502, UnavailableError, "http_502"],
      [500, InferlineAPIError, "internal"],
    ] as const) {
      proxy.when(() => (status === 502 ? { status } : problem(status, code)));
      const err = await failure(client.models.list());
      expect(err, `${status}`).toBeInstanceOf(Kind);
      expect(err).toMatchObject({ status, code, attempts: 1 });
    }
    const plain = await failure(client.models.list());
    expect(Object.getPrototypeOf(plain)).toBe(InferlineAPIError.prototype);
  });
});

describe("retries", () => {
  it("retries 408, 502 and 504 for reads and keyed creates, and never for a POST without a key", async () => {
    const client = await proxied("gateway");
    proxy.when((r) => (r.n === 1 ? { status: [408, 502, 504][r.method === "GET" ? 0 : 2]! } : "forward"));
    expect((await client.models.list()).map((m) => m.name)).toContain("iris");
    expect(proxy.requests("GET", "/v1/models")).toHaveLength(2);
    const created = await client.jobs.create(job);
    const posts = proxy.requests("POST", "/v1/jobs");
    expect(posts).toHaveLength(2);
    expect(posts[1]!.headers["idempotency-key"]).toBe(posts[0]!.headers["idempotency-key"]);

    proxy.when((r) => (r.method === "POST" ? { status: 502 } : "forward"));
    expect(await failure(client.jobs.cancel(created.id))).toMatchObject({
      name: "UnavailableError",
      status: 502,
      attempts: 1,
    });
    expect(proxy.requests("POST", `/v1/jobs/${created.id}/cancel`)).toHaveLength(1);
  });
});

describe("per-call options", () => {
  it("takes maxRetries, timeout and signal on each call over the client's own", async () => {
    const client = await proxied("per-call", { maxRetries: 5, timeout: 60_000 });
    proxy.when(() => problem(503, "queue_full"));
    expect(await failure(client.models.list({ maxRetries: 0 }))).toMatchObject({
      name: "UnavailableError",
      attempts: 1,
    });
    expect(proxy.requests("GET", "/v1/models")).toHaveLength(1);

    proxy.when(() => "hold");
    const late = await failure(client.models.get("iris", { timeout: 200, maxRetries: 1 }));
    expect(late).toBeInstanceOf(TimeoutError);
    expect(late).toMatchObject({ code: "timeout", status: undefined, attempts: 2 });

    const abort = new AbortController();
    const pending = client.jobs.get("00000000-0000-4000-8000-000000000000", { signal: abort.signal });
    abort.abort(new Error("no longer wanted"));
    await expect(pending).rejects.toThrow("no longer wanted");
  });
});

describe("settings", () => {
  it("reads INFERLINE_URL and INFERLINE_API_KEY when not given, and names them when neither is there", async () => {
    const key = await stack.createKey("from-env");
    const saved = { url: process.env.INFERLINE_URL, key: process.env.INFERLINE_API_KEY };
    try {
      Object.assign(process.env, { INFERLINE_URL: stack.api.url, INFERLINE_API_KEY: key });
      expect((await new InferlineClient().models.list()).map((m) => m.name)).toContain("iris");
      delete process.env.INFERLINE_URL;
      expect(() => new InferlineClient()).toThrow(/INFERLINE_URL/);
      delete process.env.INFERLINE_API_KEY;
      expect(() => new InferlineClient({ baseUrl: stack.api.url })).toThrow(/INFERLINE_API_KEY/);
    } finally {
      for (const [name, value] of [
        ["INFERLINE_URL", saved.url],
        ["INFERLINE_API_KEY", saved.key],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("sends User-Agent inferline-node/<version>, the version of the package", async () => {
    const client = await proxied("user-agent");
    proxy.when(() => "forward");
    await client.models.list();
    const manifest = JSON.parse(
      fs.readFileSync(new URL("../packages/client/package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(VERSION).toBe(manifest.version);
    expect(proxy.requests("GET", "/v1/models")[0]!.headers["user-agent"]).toBe(`inferline-node/${manifest.version}`);
  });
});
