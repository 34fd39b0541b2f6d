import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisJob, irisInput, sleepUntil } from "@inferline/testing";
import { activeTraceParent, NO_SPAN, startSpan, tracing } from "@inferline/telemetry";
import { startStack, type TestStack } from "./support/stack.ts";

/** One span as an OTLP/HTTP JSON export carried it, attributes flattened to strings. */
interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string>;
  service: string;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type OtlpAttribute = { key: string; value: OtlpValue };
interface ExportTraceServiceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
      }>;
    }>;
  }>;
}

/** OTLP/JSON ids are hex; a base64 one (the protobuf mapping) is turned into hex too. */
const hexId = (id: string | undefined): string =>
  !id ? "" : /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, "base64").toString("hex");
const flatten = (attrs: OtlpAttribute[] = []): Record<string, string> =>
  Object.fromEntries(
    attrs.map((a) => [
      a.key,
      String(a.value.stringValue ?? a.value.intValue ?? a.value.doubleValue ?? a.value.boolValue),
    ]),
  );

/** An OTLP/HTTP receiver in this process: `POST /v1/traces` with JSON ExportTraceServiceRequest bodies. */
class OtlpReceiver {
  readonly spans: CollectedSpan[] = [];
  /** Export requests that were not JSON (the exporter must send JSON). */
  readonly rejected: string[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (
        req.method !== "POST" ||
        req.url !== "/v1/traces" ||
        !String(req.headers["content-type"]).startsWith("application/json")
      ) {
        this.rejected.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
        return void res.writeHead(400).end();
      }
      this.collect(JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExportTraceServiceRequest);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  url = "";

  private collect(body: ExportTraceServiceRequest): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = flatten(rs.resource?.attributes)["service.name"] ?? "";
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          this.spans.push({
            traceId: hexId(s.traceId),
            spanId: hexId(s.spanId),
            parentSpanId: hexId(s.parentSpanId),
            name: s.name,
            kind: s.kind,
            attributes: flatten(s.attributes),
            service,
          });
    }
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  trace(traceId: string): CollectedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** The trace holding a span whose `key` attribute is `value`, once it has every span named in `names`. */
  async traceWith(key: string, value: string, names: string[]): Promise<CollectedSpan[]> {
    return sleepUntil(
      () => {
        const first = this.spans.find((s) => s.attributes[key] === value);
        const spans = first ? this.trace(first.traceId) : [];
        return names.every((n) => spans.some((s) => s.name === n)) ? spans : undefined;
      },
      { timeoutMs: 20_000, message: `spans ${names.join(", ")} with ${key}=${value}` },
    );
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A webhook target on loopback that records each delivery's headers. */
async function webhookReceiver(): Promise<{
  url: string;
  headers: Array<Record<string, string | string[] | undefined>>;
  close(): Promise<void>;
}> {
  const headers: Array<Record<string, string | string[] | undefined>> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      headers.push(req.headers);
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=secret-in-query`,
    headers,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every span's parent is in the trace, and the one root is `rootName`. */
function expectTree(spans: CollectedSpan[], rootName: string): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  expect(roots.map((r) => r.name)).toEqual([rootName]);
}

/** Distinctive feature values: no attribute of any span may carry them. */
const ROWS = [[6.123, 2.987, 4.456, 1.789]];
const INPUT_TEXT = ["6.123", "2.987", "4.456", "1.789"];
const OTEL_VARS = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_SERVICE_NAME"] as const;
const WEBHOOK_ENV = { WEBHOOK_ALLOW_PRIVATE: "true" };
const SERVER_SPAN = 2;

async function storedTraceParent(stack: TestStack, table: "jobs" | "batches", id: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: stack.db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ trace_parent: string | null }>(
      `select trace_parent from ${table} where id = $1`,
      [id],
    );
    return rows[0]?.trace_parent ?? null;
  } finally {
    await client.end();
  }
}

let otlp: OtlpReceiver;
let hooks: Awaited<ReturnType<typeof webhookReceiver>>;
const savedEnv = Object.fromEntries(OTEL_VARS.map((k) => [k, process.env[k]]));

beforeAll(async () => {
  otlp = await new OtlpReceiver().start();
  hooks = await webhookReceiver();
});
afterAll(async () => {
  for (const k of OTEL_VARS) if (savedEnv[k] === undefined) delete process.env[k];
  await hooks?.close();
  await otlp?.close();
});

describe("tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)", () => {
  let stack: TestStack;
  beforeAll(async () => {
    // The exporter reads the standard variables of the process itself.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.url;
    process.env.OTEL_BSP_SCHEDULE_DELAY = "100";
    delete process.env.OTEL_SERVICE_NAME;
    stack = await startStack({ api: WEBHOOK_ENV, workerEnv: { ...WEBHOOK_ENV, WEBHOOK_SWEEP_INTERVAL_MS: "0" } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("follows one job from its submit through claim, inference and result write to its webhook attempt, in one trace", async () => {
    const submit = await stack.alpha.post("/v1/jobs", irisJob(ROWS, { webhook: { url: hooks.url }, cache: "bypass" }));
    expect(submit.status).toBe(202);
    const jobId = submit.body.id as string;
    const spans = await otlp.traceWith("inferline.job.id", jobId, [
      "POST /v1/jobs",
      "claim",
      "inference",
      "result write",
      "webhook attempt",
    ]);

    const api = spans.find((s) => s.name === "POST /v1/jobs")!;
    expect(api).toMatchObject({ kind: SERVER_SPAN, parentSpanId: "", service: "inferline-api" });
    expect(api.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/v1/jobs",
      "http.response.status_code": "202",
      "inferline.job.id": jobId,
    });
    expectTree(spans, "POST /v1/jobs");
    for (const name of ["claim", "inference", "result write"]) {
      expect(spans.find((s) => s.name === name)?.attributes, name).toMatchObject({
        "inferline.model": "iris",
        "inferline.model.version": "1",
        "inferline.job.id": jobId,
      });
    }
    const consumer = spans.find((s) => s.name === "process infer-iris@1")!;
    expect(consumer.parentSpanId).toBe(api.spanId);
    expect(consumer.attributes["inferline.batch.size"]).toBe("1");
    const attempt = spans.find((s) => s.name === "webhook attempt")!;
    expect(attempt.parentSpanId).toBe(api.spanId);
    expect(attempt.attributes).toMatchObject({
      "inferline.attempt": "1",
      "http.response.status_code": "200",
      "inferline.outcome": "delivered",
      "server.address": "127.0.0.1",
    });

    // What the job row stores is the API span's context, and the webhook POST carried the attempt's.
    expect(await storedTraceParent(stack, "jobs", jobId)).toBe(`00-${api.traceId}-${api.spanId}-01`);
    const sent = hooks.headers.find((h) => String(h.traceparent ?? "").startsWith(`00-${api.traceId}-`));
    expect(sent?.traceparent).toBe(`00-${api.traceId}-${attempt.spanId}-01`);

    // Never inputs, results or URLs' query strings.
    const text = JSON.stringify(spans.map((s) => s.attributes));
    for (const value of [...INPUT_TEXT, "secret-in-query", "token", "probabilities"]) expect(text).not.toContain(value);
  });

  it("continues an incoming traceparent", async () => {
    const traceId = crypto.randomBytes(16).toString("hex");
    const parentId = crypto.randomBytes(8).toString("hex");
    const submit = await stack.alpha.post("/v1/jobs", irisJob(ROWS, { cache: "bypass" }), {
      traceparent: `00-${traceId}-${parentId}-01`,
    });
    expect(submit.status).toBe(202);
    const spans = await otlp.traceWith("inferline.job.id", submit.body.id, [
      "POST /v1/jobs",
      "claim",
      "inference",
      "result write",
    ]);
    expect(spans[0]!.traceId).toBe(traceId);
    expect(spans.find((s) => s.name === "POST /v1/jobs")!.parentSpanId).toBe(parentId);
  });

  it("traces a batch's chunks in the batch's trace", async () => {
    const items = Array.from({ length: 3 }, () => ({ inputs: [irisInput(ROWS)] }));
    const created = await stack.alpha.post("/v1/batches", { model: "iris", items, cache: "bypass" });
    expect(created.status).toBe(202);
    const batchId = created.body.id as string;
    const spans = await otlp.traceWith("inferline.batch.id", batchId, [
      "POST /v1/batches",
      "claim",
      "inference",
      "result write",
    ]);
    expectTree(spans, "POST /v1/batches");
    expect(spans.find((s) => s.name === "inference")!.attributes).toMatchObject({
      "inferline.batch.id": batchId,
      "inferline.batch.size": "3",
      "inferline.model": "iris",
    });
    expect(await storedTraceParent(stack, "batches", batchId)).toMatch(new RegExp(`^00-${spans[0]!.traceId}-`));
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain(INPUT_TEXT[0]);
  });
});

describe("tracing off (variable unset)", () => {
  let stack: TestStack;
  beforeAll(async () => {
    for (const k of OTEL_VARS) delete process.env[k];
    stack = await startStack({ api: WEBHOOK_ENV, workerEnv: { ...WEBHOOK_ENV, WEBHOOK_SWEEP_INTERVAL_MS: "0" } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("registers nothing, exports nothing, stores no traceparent, and jobs still run", async () => {
    expect(tracing.enabled).toBe(false);
    expect(startSpan("anything")).toBe(NO_SPAN);
    expect(activeTraceParent()).toBeNull();
    const before = otlp.spans.length;
    const delivered = hooks.headers.length;
    const submit = await stack.alpha.post("/v1/jobs", irisJob(ROWS, { webhook: { url: hooks.url }, cache: "bypass" }), {
      traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`,
    });
    const done = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=20`);
    expect(done.body.status).toBe("succeeded");
    await sleepUntil(() => hooks.headers.length > delivered, { message: "the webhook delivery" });
    expect(hooks.headers.at(-1)?.traceparent).toBeUndefined();
    expect(await storedTraceParent(stack, "jobs", submit.body.id)).toBeNull();
    expect(otlp.spans.length).toBe(before);
  });
});
