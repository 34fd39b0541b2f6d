/**
 * The latency sweep as a chart: submit-to-result latency (p50 and p99) against the throughput
 * achieved, Inferline beside BullMQ's own add-to-completed floor, rendered headless to SVG with
 * Vega-Lite → Vega (no browser, no canvas: Vega's SVG renderer is string output in node).
 */
import * as vega from "vega";
import * as vl from "vega-lite";

export interface SweepPoint {
  rate: number;
  achievedRate: number;
  p50: number;
  p99: number;
}

export async function latencyChartSvg(series: Record<string, SweepPoint[]>, subtitle: string[]): Promise<string> {
  const values = Object.entries(series).flatMap(([system, points]) =>
    points.flatMap((p) => [
      { system, percentile: "p50", throughput: p.achievedRate, latency: p.p50, offered: p.rate },
      { system, percentile: "p99", throughput: p.achievedRate, latency: p.p99, offered: p.rate },
    ]),
  );
  const spec: vl.TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Submit-to-result latency against throughput (iris)",
      subtitle: [...subtitle, "solid: p50, dashed: p99"],
      anchor: "start",
    },
    width: 720,
    height: 340,
    data: { values: values.filter((v) => Number.isFinite(v.latency) && v.latency > 0) },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "throughput",
        type: "quantitative",
        title: "achieved jobs/s (log)",
        scale: { type: "log", nice: false },
      },
      y: { field: "latency", type: "quantitative", title: "latency, ms (log)", scale: { type: "log" } },
      color: { field: "system", type: "nominal", title: null, legend: { orient: "top-left", labelLimit: 320 } },
      strokeDash: { field: "percentile", type: "nominal", title: null, legend: null },
      detail: [{ field: "system" }, { field: "percentile" }],
      order: { field: "offered", type: "quantitative" },
    },
    config: { font: "DejaVu Sans, sans-serif", background: "white" },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
