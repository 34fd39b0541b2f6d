import type { RequestHandler } from "express";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CacheMetrics } from "@inferline/cache";
import type { QueueReading, QueueReadings } from "./services/queue-readings.ts";
import type { RequestAdmission } from "./middleware/admission.ts";

/** What a submit counts: a single job, or a batch with its items. */
export type SubmitKind = "job" | "batch";

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
  readonly longPollWaiters = new Gauge({
    name: "inferline_api_long_poll_waiters",
    help: "Long-polls waiting in this API process",
    registers: [this.registry],
  });
  readonly longPollRejected = new Counter({
    name: "inferline_api_long_poll_rejected_total",
    help: "Long-polls refused with 429 too_many_waiters (tenant at its cap)",
    registers: [this.registry],
  });
  readonly resultStreams = new Gauge({
    name: "inferline_api_batch_result_streams",
    help: "GET /v1/batches/:id/results responses being written",
    registers: [this.registry],
  });
  readonly resultStreamsAborted = new Counter({
    name: "inferline_api_batch_result_streams_aborted_total",
    help: "Batch result streams stopped early: the client went away, or stopped reading for RESULT_STREAM_IDLE_MS",
    registers: [this.registry],
  });

  private readonly cacheLookups = new Counter({
    name: "inferline_cache_lookups_total",
    help: "Result cache lookups of jobs and batch items by model and outcome (hit, miss, bypass, merged: joined an identical request in flight)",
    labelNames: ["model", "outcome"],
    registers: [this.registry],
  });
  /** The API looks up; the worker writes (see WorkerMetrics). */
  // Children cached per model and outcome: every cached model's submit counts one lookup, and
  // prom-client resolves a label object by building a key string each time.
  private readonly lookupChildren = new Map<string, { inc(n?: number): void }>();
  readonly cache: CacheMetrics = {
    lookups: (model, outcome, n = 1) => {
      const key = `${model}\u0000${outcome}`;
      let child = this.lookupChildren.get(key);
      if (!child) this.lookupChildren.set(key, (child = this.cacheLookups.labels(model, outcome)));
      child.inc(n);
    },
    writes: () => {},
  };

  // Submits by model (a replay of an Idempotency-Key is no new submit). Children cached per model:
  // this is on the submit path (see middleware()).
  private readonly jobsSubmitted = new Counter({
    name: "inferline_jobs_submitted_total",
    help: "Jobs accepted (POST /v1/jobs and v2 infer) by model",
    labelNames: ["model"],
    registers: [this.registry],
  });
  private readonly batchesSubmitted = new Counter({
    name: "inferline_batches_submitted_total",
    help: "Batches accepted by model",
    labelNames: ["model"],
    registers: [this.registry],
  });
  private readonly itemsSubmitted = new Counter({
    name: "inferline_batch_items_submitted_total",
    help: "Batch items accepted by model",
    labelNames: ["model"],
    registers: [this.registry],
  });
  private readonly submitChildren = new Map<string, { inc(n?: number): void }>();

  // The queue gauges: the same numbers in every API process (read from PostgreSQL), so aggregate
  // them across processes with max, not sum. Read on scrape, at most about once a second (see QueueReadings).
  private readings: QueueReadings | undefined;
  private readonly queued = new Gauge({
    name: "inferline_queue_queued",
    help: "Work waiting for a worker (not started) by model and kind (job: single jobs, batch_item: batch items); the autoscaling signal",
    labelNames: ["model", "kind"],
    registers: [this.registry],
    collect: () =>
      this.showQueues((r) => {
        this.queued.reset();
        for (const m of r.models) {
          this.queued.set({ model: m.model, kind: "job" }, m.queuedJobs);
          this.queued.set({ model: m.model, kind: "batch_item" }, m.queuedItems);
        }
      }),
  });
  private readonly running = new Gauge({
    name: "inferline_queue_running",
    help: "Jobs and batch items in queue entries a worker has started and not finished, by model",
    labelNames: ["model"],
    registers: [this.registry],
    collect: () =>
      this.showQueues((r) => {
        this.running.reset();
        for (const m of r.models) this.running.set({ model: m.model }, m.running);
      }),
  });
  private readonly oldestAge = new Gauge({
    name: "inferline_queue_oldest_age_seconds",
    help: "How long the model's oldest queue entry not yet started has waited (0: none waits)",
    labelNames: ["model"],
    registers: [this.registry],
    collect: () =>
      this.showQueues((r) => {
        this.oldestAge.reset();
        const now = Date.now();
        for (const m of r.models)
          this.oldestAge.set(
            { model: m.model },
            m.oldestQueuedAt === null ? 0 : Math.max(0, now - m.oldestQueuedAt) / 1000,
          );
      }),
  });
  private readonly readingTime = new Gauge({
    name: "inferline_queue_reading_timestamp_seconds",
    help: "When the queue gauges' numbers were read from PostgreSQL (unix seconds; 0: never): older than a few seconds means the reads fail",
    registers: [this.registry],
    collect: () => this.showQueues((r) => this.readingTime.set(r.at / 1000)),
  });
  private readonly readingFailures = new Counter({
    name: "inferline_queue_reading_failures_total",
    help: "Reads of the queue gauges' numbers that failed (the gauges kept their last values)",
    registers: [this.registry],
    collect: () => {
      this.readingFailures.reset();
      this.readingFailures.inc(this.readings?.failures ?? 0);
    },
  });

  private admission: RequestAdmission | undefined;
  private readonly requestsInFlight: Gauge = new Gauge({
    name: "inferline_api_requests_in_flight",
    help: "Requests in progress in this API process, as admission control counts them (probes, scrapes and waiting long-polls aside)",
    registers: [this.registry],
    collect: () => this.requestsInFlight.set(this.admission?.current ?? 0),
  });
  private readonly requestsRefused: Counter = new Counter({
    name: "inferline_api_requests_overloaded_total",
    help: "Requests answered 503 overloaded at the door (MAX_REQUESTS_IN_FLIGHT reached)",
    registers: [this.registry],
    collect: () => {
      this.requestsRefused.reset();
      this.requestsRefused.inc(this.admission?.refused ?? 0);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "inferline_api_" });
  }

  /** Has the queue gauges read through `readings` (server.ts; without it they stay empty). */
  watchQueues(readings: QueueReadings): void {
    this.readings = readings;
  }

  /** Shows the door's in-flight count and refusals (server.ts). */
  watchAdmission(admission: RequestAdmission): void {
    this.admission = admission;
  }

  /** Counts an accepted submit: one job, or one batch of `items` items. */
  submitted(kind: SubmitKind, model: string, items = 1): void {
    const key = `${kind}:${model}`;
    let child = this.submitChildren.get(key);
    if (!child) {
      if (kind === "job") child = this.jobsSubmitted.labels(model);
      else {
        const [batches, batchItems] = [this.batchesSubmitted.labels(model), this.itemsSubmitted.labels(model)];
        child = { inc: (n = 1) => (batches.inc(), batchItems.inc(n)) };
      }
      this.submitChildren.set(key, child);
    }
    child.inc(items);
  }

  /** Sets gauges from the current reading; never fails a scrape (no reading yet: the gauges stay as they are). */
  private async showQueues(show: (reading: QueueReading) => void): Promise<void> {
    const reading = await this.readings?.current();
    if (reading) show(reading);
  }

  middleware(): RequestHandler {
    // Labelled children are cached: resolving labels on every observation cost a measurable share
    // of a submit's CPU.
    const children = new Map<string, ReturnType<Histogram<string>["labels"]>>();
    return (req, res, next) => {
      const started = performance.now();
      // on, not once: a response finishes once, and once's wrapper is an allocation per request.
      res.on("finish", () => {
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
