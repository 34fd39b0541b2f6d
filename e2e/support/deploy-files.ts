import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";

/** The repository's deploy/ folder. */
export const DEPLOY_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy");

export interface PromtoolRun {
  status: number | null;
  /** stdout and stderr together, as promtool splits its findings between them. */
  output: string;
}

/** Runs promtool (Debian's prometheus package; .ci/install-promtool.sh installs it). Throws when it is missing, so CI cannot skip these checks. */
export function promtool(args: string[], options: { input?: string; cwd?: string } = {}): PromtoolRun {
  const run = spawnSync("promtool", args, {
    input: options.input,
    cwd: options.cwd ?? DEPLOY_DIR,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (run.error)
    throw new Error(`promtool failed to run (${run.error.message}); install it with .ci/install-promtool.sh`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/**
 * The findings of `promtool check metrics` that come from prom-client's default metrics, which
 * Inferline does not name: Node's active handles, requests and resources are gauges whose names
 * end in `_total`. Exactly these lines, for both processes' prefixes, and nothing else is let through.
 */
const DEFAULT_METRIC_FINDINGS = new Set(
  ["api", "worker"].flatMap((p) =>
    ["handles", "requests", "resources"].map(
      (r) => `inferline_${p}_nodejs_active_${r}_total non-counter metrics should not have "_total" suffix`,
    ),
  ),
);

/** `promtool check metrics` over an exposition: the findings left once prom-client's own are taken out, and promtool's exit status. */
export function checkMetrics(exposition: string): { status: number | null; findings: string[]; filtered: string[] } {
  const run = promtool(["check", "metrics"], { input: exposition });
  const lines = run.output
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return {
    status: run.status,
    findings: lines.filter((l) => !DEFAULT_METRIC_FINDINGS.has(l)),
    filtered: lines.filter((l) => DEFAULT_METRIC_FINDINGS.has(l)),
  };
}

/** Every sample name an exposition can carry, from its `# TYPE` lines (so a labelled metric with no sample yet still counts): histograms' and summaries' series included. */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

/** The Inferline metric names a PromQL expression mentions, selectors and `__name__` matchers alike. */
export function inferlineNames(expr: string): string[] {
  return [...new Set(expr.match(/\binferline_[A-Za-z0-9_]+/g) ?? [])];
}

/** A Grafana panel as far as the checks read it. */
export interface DashboardPanel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: DashboardPanel[];
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: DashboardPanel[];
  templating: { list: Array<{ name: string; query?: string | { query: string } }> };
}

export function readDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(path.join(DEPLOY_DIR, "grafana/inferline.json"), "utf8")) as Dashboard;
}

/** Every panel but rows, nested ones included. */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  const all: DashboardPanel[] = [];
  const walk = (panels: DashboardPanel[]) => {
    for (const p of panels) {
      if (p.type !== "row") all.push(p);
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return all;
}

/** Every PromQL expression of the dashboard's panels, with Grafana's variables given values PromQL accepts. */
export function dashboardExpressions(dashboard: Dashboard): string[] {
  return dashboardPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t) => t.expr.replaceAll("$__rate_interval", "5m").replaceAll("$model", ".*")),
  );
}

/** A Kubernetes manifest as far as the checks read it. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: any;
  data?: Record<string, string>;
}

/** Every document of every file of deploy/kubernetes (kustomization.yaml apart), parsed; a parse error throws naming the file. */
export function readManifests(): Array<{ file: string; manifest: Manifest }> {
  const dir = path.join(DEPLOY_DIR, "kubernetes");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .sort()
    .flatMap((file) =>
      parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8")).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
        return { file, manifest: doc.toJS() as Manifest };
      }),
    );
}

/** The Prometheus query of the KEDA ScaledObject's prometheus trigger. */
export function scaledObjectQuery(manifests: Manifest[]): string {
  const scaled = manifests.find((m) => m.kind === "ScaledObject");
  const trigger = (scaled?.spec?.triggers as Array<{ type: string; metadata: { query: string } }> | undefined)?.find(
    (t) => t.type === "prometheus",
  );
  if (!trigger) throw new Error("no ScaledObject with a prometheus trigger in deploy/kubernetes");
  return trigger.metadata.query;
}

/** The alert rules of deploy/prometheus/alerts.yml: name and expression of each. */
export function alertRules(): Array<{
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}> {
  const doc = parseAllDocuments(fs.readFileSync(path.join(DEPLOY_DIR, "prometheus/alerts.yml"), "utf8"))[0]!.toJS() as {
    groups: Array<{
      rules: Array<{
        alert: string;
        expr: string;
        for?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      }>;
    }>;
  };
  return doc.groups.flatMap((g) => g.rules);
}

/** A scrape job of deploy/prometheus/prometheus.yml as far as the checks read it. */
export interface ScrapeJob {
  job_name: string;
  dns_sd_configs: Array<{ names: string[]; port: number }>;
  relabel_configs: Array<{ target_label: string; replacement: string; source_labels?: string[] }>;
}

export function readScrapeJobs(): ScrapeJob[] {
  const text = fs.readFileSync(path.join(DEPLOY_DIR, "prometheus/prometheus.yml"), "utf8");
  return (parse(text) as { scrape_configs: ScrapeJob[] }).scrape_configs;
}

/** The PodMonitor of deploy/prometheus/podmonitor.yaml. */
export interface PodMonitor extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: Array<{
      port: string;
      path: string;
      relabelings?: Array<{ targetLabel: string; replacement: string }>;
    }>;
  };
}

export function readPodMonitor(): PodMonitor {
  return parse(fs.readFileSync(path.join(DEPLOY_DIR, "prometheus/podmonitor.yaml"), "utf8")) as PodMonitor;
}
