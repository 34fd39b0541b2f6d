import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, irisInput, irisJob, IRIS_SAMPLES, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import {
  alertRules,
  checkMetrics,
  dashboardExpressions,
  exportedNames,
  inferlineNames,
  readDashboard,
  readManifests,
  scaledObjectQuery,
} from "./support/deploy-files.ts";

// /metrics of a real API and a real worker after real work: the queue gauges while work waits,
// submits, jobs and batch items finished by status (results, failures, expiries and cancels by
// the deadline sweep), webhook attempts and their latency; both expositions pass `promtool check
// metrics`; and every metric that deploy/ (alerts, dashboard, KEDA) names is one they export.

/** A loopback webhook receiver: the first request to a path answers 500, the next ones 200. */
class Receiver {
  private readonly hits = new Map<string, number>();
  private readonly server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const n = (this.hits.get(req.url ?? "") ?? 0) + 1;
      this.hits.set(req.url ?? "", n);
      res.writeHead(n === 1 ? 500 : 200).end();
    });
  });
  url = "";
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  count(path: string): number {
    return this.hits.get(path) ?? 0;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let stack: TestStack;
let receiver: Receiver;
let workerMetricsUrl: string;
const lookupJob = (index: number, extra: Record<string, unknown> = {}) => ({
  model: "lookup",
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
  ...extra,
});
/** An iris job of its own input: iris has a result cache, and identical jobs in flight would run once (followers are never queued). */
const distinctIris = (i: number, extra: Record<string, unknown> = {}) => irisJob([[5 + i / 10, 3.5, 1.4, 0.2]], extra);
const hangItems = (n: number) => Array.from({ length: n }, () => ({ inputs: lookupJob(0).inputs }));

beforeAll(async () => {
  receiver = await new Receiver().start();
  workerMetricsUrl = `http://127.0.0.1:${await freePort()}`;
  // The fault models are in the repository only so that work on `hang` waits for a worker that
  // never comes (this worker serves iris and lookup) and ends by its deadlines.
  stack = await startStack({
    worker: false,
    faultModels: true,
    api: { WEBHOOK_ALLOW_PRIVATE: "true" },
    workerEnv: {
      WORKER_MODELS: "iris,lookup",
      METRICS_PORT: new URL(workerMetricsUrl).port,
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_RETRY_SCHEDULE_MS: "0,50,100",
      WEBHOOK_SWEEP_INTERVAL_MS: "0",
      DEADLINE_SWEEP_INTERVAL_MS: "200",
    },
  });
});
afterAll(async () => {
  await stack?.close();
  await receiver?.close();
});

const scrape = async (url: string): Promise<string> => {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
};
const apiMetrics = () => scrape(stack.api.url);
const workerMetrics = () => scrape(workerMetricsUrl);

/** A sample's value (labels in the order the metric declares them), or undefined when the exposition has none. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

describe("metrics for autoscaling and alerts, on a real API and worker", () => {
  let apiText = "";
  let workerText = "";

  it("the API's queue gauges show queued jobs and batch items per model and the oldest wait, and its counters the submits", async () => {
    const alpha = stack.alpha;
    for (let i = 0; i < 3; i++) expect((await alpha.post("/v1/jobs", distinctIris(i))).status).toBe(202);
    expect((await alpha.post("/v1/jobs", distinctIris(3, { webhook: { url: `${receiver.url}/hook` } }))).status).toBe(
      202,
    );
    expect(
      (
        await alpha.post("/v1/batches", {
          model: "iris",
          items: [IRIS_SAMPLES.setosa, IRIS_SAMPLES.versicolor, IRIS_SAMPLES.virginica].map((r) => ({
            inputs: [irisInput([r])],
          })),
        })
      ).status,
    ).toBe(202);
    // Replayed with the same Idempotency-Key: one submit, not two.
    const keyed = distinctIris(4);
    expect((await alpha.post("/v1/jobs", keyed, { "idempotency-key": "metrics-1" })).status).toBe(202);
    expect((await alpha.post("/v1/jobs", keyed, { "idempotency-key": "metrics-1" })).status).toBe(200);
    // lookup index 7 is out of the model's table: the run fails.
    expect((await alpha.post("/v1/jobs", lookupJob(7))).status).toBe(202);
    // No worker serves `hang`: these end by their deadlines (the worker's sweep), never run.
    expect((await alpha.post("/v1/jobs", lookupJob(0, { model: "hang", maxQueueSeconds: 1 }))).status).toBe(202);
    expect((await alpha.post("/v1/jobs", lookupJob(0, { model: "hang" }), { "cancel-after": "1s" })).status).toBe(202);
    expect((await alpha.post("/v1/batches", { model: "hang", maxQueueSeconds: 1, items: hangItems(2) })).status).toBe(
      202,
    );

    const text = await sleepUntil(
      async () => {
        const t = await apiMetrics();
        return sample(t, "inferline_queue_queued", 'model="iris",kind="job"') === 5 &&
          sample(t, "inferline_queue_queued", 'model="hang",kind="batch_item"') === 2
          ? t
          : undefined;
      },
      { message: "the queue gauges never showed the queued work" },
    );
    expect(sample(text, "inferline_queue_queued", 'model="iris",kind="batch_item"')).toBe(3);
    expect(sample(text, "inferline_queue_queued", 'model="lookup",kind="job"')).toBe(1);
    expect(sample(text, "inferline_queue_queued", 'model="hang",kind="job"')).toBe(2);
    // Models of the repository with nothing queued read 0 rather than having no series.
    expect(sample(text, "inferline_queue_queued", 'model="crash",kind="job"')).toBe(0);
    expect(sample(text, "inferline_queue_running", 'model="iris"')).toBe(0);
    expect(sample(text, "inferline_queue_oldest_age_seconds", 'model="iris"')).toBeGreaterThan(0);
    expect(sample(text, "inferline_queue_oldest_age_seconds", 'model="crash"')).toBe(0);
    expect(sample(text, "inferline_queue_reading_timestamp_seconds")).toBeGreaterThan(0);
    expect(sample(text, "inferline_jobs_submitted_total", 'model="iris"')).toBe(5);
    expect(sample(text, "inferline_jobs_submitted_total", 'model="lookup"')).toBe(1);
    expect(sample(text, "inferline_jobs_submitted_total", 'model="hang"')).toBe(2);
    expect(sample(text, "inferline_batches_submitted_total", 'model="iris"')).toBe(1);
    expect(sample(text, "inferline_batch_items_submitted_total", 'model="iris"')).toBe(3);
    expect(sample(text, "inferline_batch_items_submitted_total", 'model="hang"')).toBe(2);
  });

  it("the worker counts what it ends by model and status, jobs and batch items apart, and its webhook attempts by outcome with their latency", async () => {
    await stack.startWorker();
    const health = await fetch(`${workerMetricsUrl}/healthz`);
    expect(health.status).toBe(200);
    workerText = await sleepUntil(
      async () => {
        const t = await workerMetrics();
        const done =
          sample(t, "inferline_jobs_finished_total", 'model="iris",status="succeeded"') === 5 &&
          sample(t, "inferline_jobs_finished_total", 'model="lookup",status="failed"') === 1 &&
          sample(t, "inferline_jobs_finished_total", 'model="hang",status="expired"') === 1 &&
          sample(t, "inferline_jobs_finished_total", 'model="hang",status="canceled"') === 1 &&
          sample(t, "inferline_batch_items_finished_total", 'model="iris",status="succeeded"') === 3 &&
          sample(t, "inferline_batch_items_finished_total", 'model="hang",status="expired"') === 2 &&
          sample(t, "inferline_webhook_attempts_total", 'outcome="delivered"') === 1;
        return done ? t : undefined;
      },
      {
        message: "the worker's counters never showed the work it ended and the webhook it delivered",
        timeoutMs: 20_000,
      },
    );
    expect(receiver.count("/hook")).toBe(2);
    expect(sample(workerText, "inferline_webhook_attempts_total", 'outcome="retrying"')).toBe(1);
    expect(sample(workerText, "inferline_webhook_delivery_duration_seconds_count", 'outcome="delivered"')).toBe(1);
    expect(sample(workerText, "inferline_webhook_delivery_duration_seconds_count", 'outcome="retrying"')).toBe(1);
    expect(
      sample(workerText, "inferline_webhook_delivery_duration_seconds_sum", 'outcome="delivered"'),
    ).toBeGreaterThan(0);

    // The queue drains: the gauges follow (their reading is at most about a second old).
    apiText = await sleepUntil(
      async () => {
        const t = await apiMetrics();
        return sample(t, "inferline_queue_queued", 'model="iris",kind="job"') === 0 &&
          sample(t, "inferline_queue_queued", 'model="hang",kind="batch_item"') === 0
          ? t
          : undefined;
      },
      { message: "the queue gauges never showed the queue drained" },
    );
    expect(sample(apiText, "inferline_queue_oldest_age_seconds", 'model="iris"')).toBe(0);
    expect(sample(apiText, "inferline_queue_queued", 'model="lookup",kind="job"')).toBe(0);
  });

  it("both expositions pass promtool check metrics (prom-client's own default-metric findings aside)", () => {
    for (const text of [apiText, workerText]) {
      expect(text).toContain("# TYPE");
      const checked = checkMetrics(text);
      expect(checked.findings).toEqual([]);
      // A non-zero exit is allowed only for the default metrics' findings that were filtered out.
      if (checked.status !== 0) expect(checked.filtered.length).toBeGreaterThan(0);
    }
    // The filter lets exactly those through: a finding of Inferline's own fails the check.
    expect(
      checkMetrics(
        "# HELP inferline_bad_total a gauge named like a counter\n# TYPE inferline_bad_total gauge\ninferline_bad_total 1\n",
      ).findings,
    ).toEqual(['inferline_bad_total non-counter metrics should not have "_total" suffix']);
  });

  it("every metric the alert rules, the Grafana dashboard and the KEDA ScaledObject name is one the API or the worker exports", () => {
    const exported = new Set([...exportedNames(apiText), ...exportedNames(workerText)]);
    const dashboard = readDashboard();
    const uses: Array<[string, string]> = [
      ...alertRules().map((r): [string, string] => [`alert ${r.alert}`, r.expr]),
      ...dashboardExpressions(dashboard).map((e): [string, string] => ["dashboard", e]),
      ...dashboard.templating.list.flatMap((v): Array<[string, string]> =>
        typeof v.query === "object" ? [[`dashboard variable ${v.name}`, v.query.query]] : [],
      ),
      ["KEDA ScaledObject", scaledObjectQuery(readManifests().map((m) => m.manifest))],
    ];
    const named = new Set<string>();
    for (const [where, expr] of uses) {
      const names = inferlineNames(expr);
      // Alerts on Prometheus's own `up` of the Inferline targets (selected by `component`) name no Inferline metric.
      const onTargets = /\bup\{component=/.test(expr);
      const mustName = where.startsWith("alert") || where === "KEDA ScaledObject";
      if (mustName) expect(names.length > 0 || onTargets, `${where} names no Inferline metric`).toBe(true);
      for (const name of names) {
        named.add(name);
        expect(exported.has(name), `${where} names ${name}, which neither process exports`).toBe(true);
      }
    }
    // The dashboard covers the metrics operators need: queues, outcomes, latency, webhooks, cache.
    for (const name of [
      "inferline_queue_queued",
      "inferline_queue_oldest_age_seconds",
      "inferline_jobs_submitted_total",
      "inferline_jobs_finished_total",
      "inferline_webhook_attempts_total",
      "inferline_webhook_delivery_duration_seconds_bucket",
      "inferline_api_long_poll_waiters",
      "inferline_cache_lookups_total",
      "inferline_cache_writes_total",
      "inferline_api_requests_in_flight",
      "inferline_api_requests_overloaded_total",
      "inferline_api_batch_result_streams",
      "inferline_api_batch_result_streams_aborted_total",
      "inferline_model_ready",
    ]) {
      expect(named.has(name), `nothing in deploy/ shows ${name}`).toBe(true);
    }
  });

  it("the alerts' HTTP ratios leave out exactly the probe and scrape routes, by the route labels the API gives them", async () => {
    const probes = ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"];
    for (const path of probes) await fetch(`${stack.api.url}${path}`);
    const text = await apiMetrics();
    const counted = text.matchAll(/^inferline_http_request_duration_seconds_count\{[^}]*route="([^"]+)"/gm);
    const routes = new Set([...counted].map((m) => m[1]!));
    for (const route of probes) expect(routes, `no series for ${route}`).toContain(route);
    const exclusions = new Set(
      alertRules().flatMap((r) => [...r.expr.matchAll(/route!~"([^"]+)"/g)].map((m) => m[1]!)),
    );
    expect(exclusions.size).toBe(1);
    // PromQL regexes are anchored at both ends.
    const excluded = new RegExp(`^(?:${[...exclusions][0]})$`);
    for (const route of routes) expect(excluded.test(route), route).toBe(probes.includes(route));
  });
});
