import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { WorkerMetrics } from "@inferline/worker";
import { ApiMetrics } from "@inferline/api";
import {
  alertRules,
  dashboardExpressions,
  dashboardPanels,
  DEPLOY_DIR,
  promtool,
  readDashboard,
  readManifests,
  readPodMonitor,
  readScrapeJobs,
  scaledObjectQuery,
  type Manifest,
} from "./support/deploy-files.ts";
import { labelCatalog, labelFaults, type LabelCatalog } from "./support/promql-labels.ts";

// deploy/ as files: the alert rules checked and unit-tested by promtool, the Prometheus
// configuration, the Grafana dashboard and the Kubernetes manifests parsed and cross-checked.
// That every metric they name is one the processes export: metrics-exposition.test.ts (a real stack).
// That every expression groups and matches only on labels its series carry: here, from the
// metrics' declarations and the target labels both scrape setups give.

/** Every expression as a recording rule, so that `promtool check rules` parses it as PromQL. */
function checkPromql(exprs: string[]): ReturnType<typeof promtool> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-promql-"));
  try {
    const file = path.join(dir, "exprs.yml");
    fs.writeFileSync(
      file,
      stringify({ groups: [{ name: "exprs", rules: exprs.map((expr, i) => ({ record: `check:expr_${i}`, expr })) }] }),
    );
    return promtool(["check", "rules", file]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("deploy/prometheus", () => {
  it("the alert rules pass promtool check rules, and their unit tests (firing and quiet series for each alert) pass promtool test rules", () => {
    const checked = promtool(["check", "rules", "prometheus/alerts.yml"]);
    expect(checked.output).toContain("SUCCESS");
    expect(checked.status).toBe(0);
    const tested = promtool(["test", "rules", "alerts.test.yml"], { cwd: path.join(DEPLOY_DIR, "prometheus") });
    expect(tested.output).toContain("SUCCESS");
    expect(tested.status).toBe(0);
  });

  it("every alert has a for:, a severity and a summary and description, and the unit tests cover every alert", () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert).sort()).toEqual(
      [
        "InferlineApiErrorRatioHigh",
        "InferlineApiOverloaded",
        "InferlineComponentDown",
        "InferlineFailureRatioHigh",
        "InferlineModelLoadFailed",
        "InferlineModelNotReady",
        "InferlineQueueMetricsStale",
        "InferlineQueueOldestAgeHigh",
        "InferlineQueueStalled",
        "InferlineTargetDown",
        "InferlineWebhookFailuresHigh",
        "InferlineWebhooksGivenUp",
      ].sort(),
    );
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
    const tests = parse(fs.readFileSync(path.join(DEPLOY_DIR, "prometheus/alerts.test.yml"), "utf8")) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const r of rules) {
      expect(
        cases.some((c) => c.alertname === r.alert && c.exp_alerts.length > 0),
        `${r.alert} fires in a test`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === r.alert && c.exp_alerts.length === 0),
        `${r.alert} stays quiet in a test`,
      ).toBe(true);
    }
  });

  it("a broken rule fails promtool check rules (the check is real)", () => {
    expect(checkPromql(["sum(rate(inferline_jobs_finished_total[5m])"]).status).not.toBe(0);
  });

  it("the example Prometheus configuration passes promtool check config, rule file included", () => {
    const checked = promtool(["check", "config", "prometheus/prometheus.yml"]);
    expect(checked.output).toContain(`SUCCESS: ${alertRules().length} rules found`);
    expect(checked.status).toBe(0);
  });
});

describe("deploy/grafana/inferline.json", () => {
  it("is valid JSON with a uid, a model variable, and panels that each have a PromQL expression promtool parses", () => {
    const dashboard = readDashboard();
    expect(dashboard).toMatchObject({ title: "Inferline", uid: "inferline" });
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(["datasource", "model"]));
    const panels = dashboardPanels(dashboard);
    expect(panels.length).toBeGreaterThanOrEqual(15);
    for (const p of panels) expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
    const titles = panels.map((p) => p.title).join("\n");
    for (const wanted of [
      "Queued work",
      "Oldest queued age",
      "Submitted",
      "Finished",
      "Failure ratio",
      "Queue wait",
      "Inference",
      "Webhook attempts",
      "Webhook request latency",
      "Long-polls",
      "Batch result streams",
      "Cache writes not stored",
      "Requests in flight",
      "Overloaded refusals",
      "HTTP 5xx ratio",
      "Model versions ready",
    ]) {
      expect(titles).toContain(wanted);
    }
    const exprs = dashboardExpressions(dashboard);
    const checked = checkPromql(exprs);
    expect(checked.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(checked.status).toBe(0);
  });
});

/** The target labels both scrape setups give every target: prometheus.yml's relabelled ones and a PodMonitor's. */
function sharedTargetLabels(): string[] {
  const fromConfig = readScrapeJobs().map((j) => new Set(j.relabel_configs.map((r) => r.target_label)));
  // The operator adds `namespace` (and `pod`, `container`, `endpoint`) to every PodMonitor target;
  // `job` and `instance` exist in both setups with values that differ.
  const endpoints = readPodMonitor().spec.podMetricsEndpoints;
  const fromMonitor = endpoints.map((e) => new Set(["namespace", ...(e.relabelings ?? []).map((r) => r.targetLabel)]));
  return [...fromConfig[0]!].filter((l) => [...fromConfig, ...fromMonitor].every((set) => set.has(l))).sort();
}

type Container = { name: string; image: string; command?: string[]; env: Array<{ name: string }>; ports?: Port[] };
type Port = { name: string; containerPort: number };
type Labels = Record<string, string>;

const containersOf = (d: Manifest): Container[] => d.spec.template.spec.containers;
const podLabelsOf = (d: Manifest): Labels => d.spec.template.metadata.labels;
const selects = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);
function faultsOf(exprs: string[], catalog: LabelCatalog): string[] {
  return exprs.flatMap((e) => labelFaults(e, catalog).map((f) => `${e}\n  ${f}`));
}

describe("labels of deploy/ expressions, under prometheus.yml and under a PodMonitor alike", () => {
  const registries = [new ApiMetrics().registry, new WorkerMetrics().registry];
  const catalog = labelCatalog(registries, sharedTargetLabels());
  const metricsOnly = labelCatalog(registries, []);

  it("prometheus.yml and podmonitor.yaml give each component's targets the same component and namespace", () => {
    expect(sharedTargetLabels()).toEqual(["component", "namespace"]);
    const deployments = readManifests()
      .map((m) => m.manifest)
      .filter((m) => m.kind === "Deployment");
    /** The component of each Deployment whose container has `port` (a name or a number). */
    const componentWithPort = (port: string | number) => {
      const hasPort = (c: Container) => c.ports?.some((p) => p.name === port || p.containerPort === port);
      return deployments
        .filter((d) => containersOf(d).some(hasPort))
        .map((d) => podLabelsOf(d)["app.kubernetes.io/component"]);
    };
    for (const job of readScrapeJobs()) {
      const set = Object.fromEntries(job.relabel_configs.map((r) => [r.target_label, r.replacement]));
      expect(componentWithPort(job.dns_sd_configs[0]!.port), job.job_name).toEqual([set.component]);
      expect(set.namespace, job.job_name).toBe(deployments[0]!.metadata.namespace);
    }
    const monitor = readPodMonitor();
    expect(monitor.kind).toBe("PodMonitor");
    for (const endpoint of monitor.spec.podMetricsEndpoints) {
      const component = endpoint.relabelings?.find((r) => r.targetLabel === "component")?.replacement;
      expect(componentWithPort(endpoint.port), endpoint.port).toEqual([component]);
      expect(endpoint.path).toBe("/metrics");
    }
    const monitored = deployments.filter((d) => selects(monitor.spec.selector.matchLabels, podLabelsOf(d)));
    expect(monitored).toEqual(deployments);
  });

  it("every dashboard expression groups, matches and selects only on the labels of the metrics it reads", () => {
    const dashboard = readDashboard();
    expect(faultsOf(dashboardExpressions(dashboard), metricsOnly)).toEqual([]);
    const variables = dashboard.templating.list.flatMap((v) => (typeof v.query === "object" ? [v.query.query] : []));
    expect(variables).toEqual(["label_values(inferline_queue_queued, model)"]);
  });

  it("every alert and the KEDA query use only the metrics' labels and the target labels both setups give", () => {
    const exprs = [...alertRules().map((r) => r.expr), scaledObjectQuery(readManifests().map((m) => m.manifest))];
    expect(faultsOf(exprs, catalog)).toEqual([]);
  });

  it("the check is real: a target label, a label the metric lacks, or vectors that cannot match are faults", () => {
    const cases: Array<{ expr: string; labels: LabelCatalog; faults: string[] }> = [
      {
        expr: "sum by (pod) (rate(inferline_api_process_cpu_seconds_total[5m]))",
        labels: metricsOnly,
        faults: ['sum by (pod): its series do not carry "pod"'],
      },
      {
        expr: 'max by (model) (inferline_queue_queued{component="api"})',
        labels: metricsOnly,
        faults: ['matches on "component", which inferline_queue_queued do not carry'],
      },
      {
        expr: "sum by (instance) (up)",
        labels: catalog,
        faults: ['sum by (instance): its series do not carry "instance"'],
      },
      {
        expr: "sum by (model) (inferline_queue_queued) / sum(inferline_queue_running)",
        labels: catalog,
        faults: ["/ between series labelled {model} and {}: none match"],
      },
      {
        expr: "max by (model) (sum by (kind) (inferline_queue_queued))",
        labels: catalog,
        faults: ['max by (model): its series do not carry "model"'],
      },
      {
        expr: "x unless on (model) inferline_queue_running",
        labels: catalog,
        faults: ["selects x, which no process exports", 'on (model): both sides must carry "model"'],
      },
      {
        expr: "histogram_quantile(0.9, sum by (le, route) (rate(inferline_http_request_duration_seconds_bucket[5m])))",
        labels: catalog,
        faults: [],
      },
    ];
    for (const { expr, labels, faults } of cases) expect(labelFaults(expr, labels), expr).toEqual(faults);
  });
});

describe("deploy/kubernetes", () => {
  const manifests = readManifests();
  const byKind = (kind: string) => manifests.filter((m) => m.manifest.kind === kind).map((m) => m.manifest);
  const deployment = (name: string): Manifest => {
    const found = byKind("Deployment").find((d) => d.metadata.name === name);
    if (!found) throw new Error(`no Deployment ${name}`);
    return found;
  };
  const config = () => byKind("ConfigMap").find((c) => c.metadata.name === "inferline-config");

  it("every file parses as YAML, every document has apiVersion, kind and a name, and kustomization.yaml lists every file", () => {
    for (const { file, manifest } of manifests) {
      expect(manifest.apiVersion, file).toBeTruthy();
      expect(manifest.kind, file).toBeTruthy();
      expect(manifest.metadata?.name, file).toBeTruthy();
    }
    const text = fs.readFileSync(path.join(DEPLOY_DIR, "kubernetes/kustomization.yaml"), "utf8");
    const kustomization = parse(text) as { resources: string[]; images: Array<{ name: string }> };
    expect([...kustomization.resources].sort()).toEqual([...new Set(manifests.map((m) => m.file))].sort());
    const services = byKind("Service").map((s) => s.metadata.name);
    expect(services).toEqual(
      expect.arrayContaining(["inferline-api", "inferline-api-pods", "inferline-worker-metrics"]),
    );
    // Every image a pod names is one kustomization.yaml points at a registry.
    const podContainers = (d: Manifest): Container[] => [
      ...(d.spec.template.spec.initContainers ?? []),
      ...containersOf(d),
    ];
    const images = byKind("Deployment").flatMap((d) => podContainers(d).map((c) => c.image));
    expect(new Set(images)).toEqual(new Set(kustomization.images.map((i) => i.name)));
    expect(new Set(images)).toEqual(new Set(["inferline-api", "inferline-worker"]));
  });

  it("each Deployment has a PodDisruptionBudget of its own, and selectors match the pods' labels", () => {
    const deployments = byKind("Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["inferline-api", "inferline-worker"]);
    const budgets = byKind("PodDisruptionBudget");
    for (const d of deployments) {
      expect(selects(d.spec.selector.matchLabels, podLabelsOf(d)), d.metadata.name).toBe(true);
      // One budget per Deployment, selecting its pods and no other's, that never blocks a drain for good.
      const own = budgets.filter((b) => selects(b.spec.selector.matchLabels, podLabelsOf(d)));
      expect(
        own.map((b) => b.metadata.name),
        d.metadata.name,
      ).toEqual([d.metadata.name]);
      expect(own[0]!.apiVersion).toBe("policy/v1");
      expect(own[0]!.spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: "AlwaysAllow" });
      const covered = deployments.filter((o) => selects(own[0]!.spec.selector.matchLabels, podLabelsOf(o)));
      expect(covered, `${d.metadata.name} budget`).toEqual([d]);
    }
    for (const service of byKind("Service")) {
      const selected = deployments.filter((d) => selects(service.spec.selector, podLabelsOf(d)));
      expect(selected.length, service.metadata.name).toBe(1);
      const ports = containersOf(selected[0]!).flatMap((c) => (c.ports ?? []).map((p) => p.name));
      const targets = (service.spec.ports as Array<{ targetPort: string }>).map((p) => p.targetPort);
      expect(ports, service.metadata.name).toEqual(expect.arrayContaining(targets));
    }
    // The scrape Services list pods that are not ready too, so a pod that stops answering is `up == 0`, not gone.
    for (const name of ["inferline-api-pods", "inferline-worker-metrics"]) {
      const spec = byKind("Service").find((s) => s.metadata.name === name)?.spec;
      expect(spec, name).toMatchObject({ clusterIP: "None", publishNotReadyAddresses: true });
    }
  });

  it("the API and the worker take settings from the ConfigMap and URLs from the Secret, and run their image's command", () => {
    expect(config()?.data).toMatchObject({ PORT: "3000", METRICS_PORT: "9464" });
    for (const name of ["inferline-api", "inferline-worker"]) {
      const container = deployment(name).spec.template.spec.containers[0];
      expect(container.command, name).toBeUndefined();
      expect(container.args, name).toBeUndefined();
      expect(container.image, name).toBe(name);
      expect(container.envFrom).toEqual([{ configMapRef: { name: "inferline-config" } }]);
      const env = container.env as Array<{ name: string; valueFrom: { secretKeyRef: { name: string } } }>;
      expect(env.map((e) => [e.name, e.valueFrom.secretKeyRef.name])).toEqual(
        expect.arrayContaining([
          ["DATABASE_URL", "inferline-secrets"],
          ["REDIS_URL", "inferline-secrets"],
        ]),
      );
    }
  });

  it("probes: the API starts on /readyz and then stays in its Service on /healthz; the worker is ready on /readyz", () => {
    const api = deployment("inferline-api").spec.template.spec.containers[0];
    expect(api.startupProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(api.readinessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(api.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    const worker = deployment("inferline-worker").spec.template.spec.containers[0];
    expect(worker.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    expect(worker.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
  });

  it("the API pauses before SIGTERM so its endpoints drain; each grace period covers the pause and SHUTDOWN_TIMEOUT_MS", () => {
    const preStopMs = (container: { lifecycle?: { preStop?: { exec: { command: string[] } } } }): number => {
      const command = container.lifecycle?.preStop?.exec.command;
      if (!command) return 0;
      expect(command.slice(0, 2)).toEqual(["node", "-e"]);
      return Number(/^setTimeout\(\(\) => \{\}, (\d+)\)$/.exec(command[2]!)?.[1]);
    };
    expect(preStopMs(deployment("inferline-api").spec.template.spec.containers[0])).toBeGreaterThanOrEqual(5000);
    const shutdownMs = Number(config()?.data?.SHUTDOWN_TIMEOUT_MS);
    for (const name of ["inferline-api", "inferline-worker"]) {
      const spec = deployment(name).spec.template.spec;
      expect(spec.terminationGracePeriodSeconds * 1000, name).toBeGreaterThan(
        preStopMs(spec.containers[0]) + shutdownMs,
      );
    }
  });

  it("every pod runs the migrations first: an init container of the worker image's runner, with the database URL alone", () => {
    for (const name of ["inferline-api", "inferline-worker"]) {
      const init = deployment(name).spec.template.spec.initContainers as Container[];
      expect(
        init.map((c) => c.name),
        name,
      ).toEqual(["migrate"]);
      expect(init[0]).toMatchObject({ image: "inferline-worker", command: ["node", "dist/migrate.js"] });
      expect(init[0]!.env.map((e) => e.name)).toEqual(["DATABASE_URL"]);
    }
    expect(byKind("Job")).toEqual([]);
  });

  it("the KEDA ScaledObject scales the worker Deployment on a query promtool parses", () => {
    const [scaled] = byKind("ScaledObject");
    expect(scaled?.apiVersion).toBe("keda.sh/v1alpha1");
    expect(scaled?.spec.scaleTargetRef.name).toBe(deployment("inferline-worker").metadata.name);
    expect(scaled?.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    const query = scaledObjectQuery(manifests.map((m) => m.manifest));
    expect(query).toContain("inferline_queue_queued");
    const checked = checkPromql([query]);
    expect(checked.output).toContain("SUCCESS: 1 rules found");
    expect(checked.status).toBe(0);
  });
});
