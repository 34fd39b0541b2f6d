import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { alertRules, dashboardExpressions, dashboardPanels, DEPLOY_DIR, promtool, readDashboard, readManifests, scaledObjectQuery, type Manifest } from "./support/deploy-files.ts";

// deploy/ as files: the alert rules checked and unit-tested by promtool, the Prometheus
// configuration, the Grafana dashboard and the Kubernetes manifests parsed and cross-checked.
// That every metric they name is one the processes export: metrics-exposition.test.ts (a real stack).

/** Every expression as a recording rule, so that `promtool check rules` parses it as PromQL. */
function checkPromql(exprs: string[]): ReturnType<typeof promtool> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-promql-"));
  try {
    const file = path.join(dir, "exprs.yml");
    fs.writeFileSync(file, stringify({ groups: [{ name: "exprs", rules: exprs.map((expr, i) => ({ record: `check:expr_${i}`, expr })) }] }));
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
      ["InferlineFailureRatioHigh", "InferlineQueueMetricsStale", "InferlineQueueOldestAgeHigh", "InferlineQueueStalled", "InferlineWebhookFailuresHigh", "InferlineWebhooksGivenUp"].sort(),
    );
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
    const tests = parse(fs.readFileSync(path.join(DEPLOY_DIR, "prometheus/alerts.test.yml"), "utf8")) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
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
    expect(checked.output).toContain("SUCCESS: 6 rules found");
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
      "Cache",
    ]) {
      expect(titles).toContain(wanted);
    }
    const exprs = dashboardExpressions(dashboard);
    const checked = checkPromql(exprs);
    expect(checked.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(checked.status).toBe(0);
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

  it("every file parses as YAML, every document has apiVersion, kind and a name, and kustomization.yaml lists every file", () => {
    for (const { file, manifest } of manifests) {
      expect(manifest.apiVersion, file).toBeTruthy();
      expect(manifest.kind, file).toBeTruthy();
      expect(manifest.metadata?.name, file).toBeTruthy();
    }
    const kustomization = parse(fs.readFileSync(path.join(DEPLOY_DIR, "kubernetes/kustomization.yaml"), "utf8")) as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual([...new Set(manifests.map((m) => m.file))].sort());
    expect(byKind("Service").map((s) => s.metadata.name)).toEqual(expect.arrayContaining(["inferline-api", "inferline-api-pods", "inferline-worker-metrics"]));
  });

  it("the API and the worker take their settings from the ConfigMap and their URLs from the Secret, with probes on /healthz and /readyz", () => {
    const config = byKind("ConfigMap").find((c) => c.metadata.name === "inferline-config");
    expect(config?.data).toMatchObject({ PORT: "3000", METRICS_PORT: "9464" });
    for (const name of ["inferline-api", "inferline-worker"]) {
      const container = deployment(name).spec.template.spec.containers[0];
      expect(container.envFrom).toEqual([{ configMapRef: { name: "inferline-config" } }]);
      const secrets = (container.env as Array<{ name: string; valueFrom: { secretKeyRef: { name: string } } }>).map((e) => [e.name, e.valueFrom.secretKeyRef.name]);
      expect(secrets).toEqual(
        expect.arrayContaining([
          ["DATABASE_URL", "inferline-secrets"],
          ["REDIS_URL", "inferline-secrets"],
        ]),
      );
      expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    }
    const api = deployment("inferline-api").spec.template.spec.containers[0];
    expect(api.startupProbe.httpGet.path).toBe("/readyz");
    expect(api.readinessProbe.httpGet.path).toBe("/healthz");
    // The worker's grace period covers its SHUTDOWN_TIMEOUT_MS, so in-flight entries finish before the kill.
    expect(deployment("inferline-worker").spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(config?.data?.SHUTDOWN_TIMEOUT_MS));
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
