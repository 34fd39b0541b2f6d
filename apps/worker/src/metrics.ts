import http from "node:http";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
  readonly jobsFinished = new Counter({
    name: "inferline_jobs_finished_total",
    help: "Jobs this worker moved to a terminal state",
    labelNames: ["model", "status"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "inferline_worker_" });
  }

  /** Serves /metrics on `port` (0 = do not serve). */
  serve(port: number): http.Server | undefined {
    if (port === 0) return undefined;
    const server = http.createServer((req, res) => {
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
