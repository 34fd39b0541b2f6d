import type { RequestHandler } from "express";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requestSeconds = new Histogram({
    name: "inferline_http_request_duration_seconds",
    help: "HTTP request latency by route and status",
    labelNames: ["method", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60],
    registers: [this.registry],
  });
  // No tenant label on any of these: label values must stay few (per-tenant detail is in logs).
  /** Long-poll requests (wait > 0, and v2 infer) holding a waiter slot in this process. */
  readonly longPollWaiters = new Gauge({ name: "inferline_api_long_poll_waiters", help: "Long-polls waiting in this API process", registers: [this.registry] });
  readonly longPollRejected = new Counter({ name: "inferline_api_long_poll_rejected_total", help: "Long-polls refused with 429 too_many_waiters (tenant at its cap)", registers: [this.registry] });
  readonly resultStreams = new Gauge({ name: "inferline_api_batch_result_streams", help: "GET /v1/batches/:id/results responses being written", registers: [this.registry] });
  readonly resultStreamsAborted = new Counter({
    name: "inferline_api_batch_result_streams_aborted_total",
    help: "Batch result streams stopped early because the client went away",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "inferline_api_" });
  }

  middleware(): RequestHandler {
    // Labelled children are cached: resolving labels on every observation cost a measurable share
    // of a submit's CPU.
    const children = new Map<string, ReturnType<Histogram<string>["labels"]>>();
    return (req, res, next) => {
      const started = performance.now();
      res.once("finish", () => {
        // The matched route pattern, not the raw path, keeps label cardinality bounded.
        const route = `${req.baseUrl}${(req.route as { path?: string } | undefined)?.path ?? ""}` || "unmatched";
        const key = `${req.method} ${route} ${res.statusCode}`;
        let child = children.get(key);
        if (!child) children.set(key, (child = this.requestSeconds.labels(req.method, route, String(res.statusCode))));
        child.observe((performance.now() - started) / 1000);
      });
      next();
    };
  }
}
