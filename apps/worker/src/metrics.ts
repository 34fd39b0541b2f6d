import http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CacheMetrics } from "@inferline/cache";
import type { WorkerModelReport } from "@inferline/contracts";
import type { EndedWork } from "@inferline/outcomes";
import type { DeliveryResult } from "@inferline/webhooks";

/** The `outcome` label of a webhook attempt: what happened to the event after it. */
export type WebhookAttemptOutcome = "delivered" | "retrying" | "failed" | "gone" | "refused" | "manual_failed";

/** The worker's Prometheus metrics: batching at work, per model. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly batchSize = new Histogram({
    name: "inferline_batch_size_items",
    help: "Jobs in one session run",
    labelNames: ["model", "version"],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: "inferline_batch_size_rows",
    help: "Rows (along the batch dimension) in one session run",
    labelNames: ["model", "version"],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers: [this.registry],
  });
  readonly inferenceSeconds = new Histogram({
    name: "inferline_inference_duration_seconds",
    help: "Time of one batched session run, pre- and post-processing included",
    labelNames: ["model", "version"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly queueWaitSeconds = new Histogram({
    name: "inferline_queue_wait_seconds",
    help: "Time from enqueue to a worker picking the queue entry up",
    labelNames: ["model"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly modelReady = new Gauge({
    name: "inferline_model_ready",
    help: "1 when this worker loaded and warmed up the model version and consumes its queue, 0 when it failed to (see the worker's log for why)",
    labelNames: ["model", "version"],
    registers: [this.registry],
  });
  // Counted from the OutcomeSystem's `ended` hook (see countEnded), so every path that ends work
  // in this process counts: results, retries exhausted, expiries at claim and by the deadline
  // sweep, Cancel-After cancels, and the cache's followers ended with their leader.
  readonly jobsFinished = new Counter({
    name: "inferline_jobs_finished_total",
    help: "Single jobs this worker moved to a terminal state, by model and status (succeeded, failed, canceled, expired)",
    labelNames: ["model", "status"],
    registers: [this.registry],
  });
  readonly unclaimedRuns = new Counter({
    name: "inferline_jobs_run_unclaimed_total",
    help: "Runs of lone small jobs of a fast model straight from their queue entry, before a claim (see the processor's runCarried)",
    labelNames: ["model"],
    registers: [this.registry],
  });
  readonly tenantCapWaits = new Counter({
    name: "inferline_tenant_cap_waits_total",
    help: "Queue entries put back on the delayed set because their tenant was at its concurrency cap (no attempt spent), by model",
    labelNames: ["model"],
    registers: [this.registry],
  });
  readonly slotYields = new Counter({
    name: "inferline_slot_yields_total",
    help: "Queue entries whose run stopped after a slice and handed the rest back because another tenant's entry was next in line (see SLOT_HOLD_MS)",
    labelNames: ["model"],
    registers: [this.registry],
  });
  readonly itemsFinished = new Counter({
    name: "inferline_batch_items_finished_total",
    help: "Batch items this worker moved to a terminal state, by model and status (succeeded, failed, canceled, expired)",
    labelNames: ["model", "status"],
    registers: [this.registry],
  });
  private readonly webhookAttempts = new Counter({
    name: "inferline_webhook_attempts_total",
    help: "Webhook delivery attempts by outcome: delivered (2xx), retrying (failed, another attempt scheduled), failed (the event failed for good: one per event given up), gone (410), refused (the SSRF guard refused the target; another attempt scheduled), manual_failed",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  private readonly webhookSeconds = new Histogram({
    name: "inferline_webhook_delivery_duration_seconds",
    help: "Time of one webhook request, from sending to the receiver's answer (or the timeout), by outcome",
    labelNames: ["outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers: [this.registry],
  });

  private readonly cacheWrites = new Counter({
    name: "inferline_cache_writes_total",
    help: "Results offered to the result cache by model and outcome (stored, too_large: over maxEntryBytes, failed: Redis refused, fingerprint_mismatch: keyed for another model file)",
    labelNames: ["model", "outcome"],
    registers: [this.registry],
  });
  /** The worker writes; the API looks up (see ApiMetrics). */
  readonly cache: CacheMetrics = {
    lookups: () => {},
    writes: (model, outcome, n = 1) => this.cacheWrites.inc({ model, outcome }, n),
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "inferline_worker_" });
  }

  /** inferline_model_ready from this worker's readiness reports: 1 for each version it serves, 0 for each that failed to load. */
  showReadiness(reports: readonly WorkerModelReport[]): void {
    for (const r of reports)
      for (const v of r.versions) this.modelReady.set({ model: r.model, version: v.version }, v.ready ? 1 : 0);
  }

  /** The OutcomeSystem's `ended` hook: jobs and batch items ended by kind, model and status. */
  readonly countEnded = (work: EndedWork[]): void => {
    for (const w of work)
      (w.kind === "job" ? this.jobsFinished : this.itemsFinished).inc({ model: w.model, status: w.status }, w.count);
  };

  /** The webhook worker's `onAttempt` hook. */
  readonly countWebhookAttempt = (result: DeliveryResult): void => {
    const outcome = webhookAttemptOutcome(result);
    if (!outcome) return;
    this.webhookAttempts.inc({ outcome });
    // A refused attempt sent nothing: its time is the guard's, not a receiver's.
    if (result.latencyMs !== undefined && outcome !== "refused")
      this.webhookSeconds.observe({ outcome }, result.latencyMs / 1000);
  };

  /**
   * Serves /metrics on `port` (0 = do not serve), with /healthz (the process is alive: a liveness
   * probe) and /readyz (200 once `ready` says so: started, with PostgreSQL and Redis answering;
   * else 503 and the reason).
   */
  serve(port: number, ready: () => Promise<string | undefined> = async () => undefined): http.Server | undefined {
    if (port === 0) return undefined;
    const server = http.createServer((req, res) => {
      if (req.url === "/healthz") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      if (req.url === "/readyz") {
        return void ready().then(
          (reason) => res.writeHead(reason ? 503 : 200, { "content-type": "text/plain" }).end(reason ?? "ready"),
          () => res.writeHead(503, { "content-type": "text/plain" }).end("unknown"),
        );
      }
      if (req.url !== "/metrics") return void res.writeHead(404).end();
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    server.on("error", () => {}); // a second worker on the same host simply has no metrics port
    server.listen(port);
    return server;
  }
}

function webhookAttemptOutcome(result: DeliveryResult): WebhookAttemptOutcome | undefined {
  // A refused attempt that ends the event (schedule exhausted) counts as failed: `failed` counts every event given up.
  if (result.refused && result.outcome === "retry") return "refused";
  switch (result.outcome) {
    case "delivered":
      return "delivered";
    case "retry":
      return "retrying";
    case "failed":
      return "failed";
    case "gone":
      return "gone";
    case "manual_failed":
      return "manual_failed";
    case "skipped":
      return undefined;
  }
}
