import type http from "node:http";
import type { Logger } from "pino";
import { BatchChunkStore, BatchStore, Database, DispatchStore, JobStore, RetentionStore, WebhookEventStore } from "@inferline/db";
import { OutcomeSystem, type OutcomeHooks } from "@inferline/outcomes";
import { createRedis, Dispatcher, FinishedNotifier } from "@inferline/queue";
import { WebhookQueue, WebhookWorker } from "@inferline/webhooks";
import type { WorkerEnv } from "./env.ts";
import { WorkerMetrics } from "./metrics.ts";
import { createProcessor } from "./processor.ts";
import { ExclusiveGate } from "./exclusive-gate.ts";
import { ModelWorkers } from "./model-workers.ts";
import { Reconciler } from "./reconciler.ts";
import { DeadlineSweeper } from "./deadline-sweeper.ts";
import { RetentionSweeper } from "./retention.ts";
import { loadServingEngine } from "./serving-engine.ts";

/** `onFinished`: called after each committed result write with the jobs it finished (tests hang here). */
export type WorkerHooks = OutcomeHooks;

export interface RunningWorker {
  models: string[];
  metrics: WorkerMetrics;
  reconciler: Reconciler;
  retention: RetentionSweeper;
  /** Expires and cancels work past its deadlines (DEADLINE_SWEEP_INTERVAL_MS). */
  deadlines: DeadlineSweeper;
  /** Webhook delivery of this process (absent when WEBHOOK_CONCURRENCY is 0). */
  webhooks?: WebhookWorker;
  /** Stops taking work, lets in-flight entries finish (up to the shutdown timeout, then hands them back), and closes every connection. */
  close(): Promise<void>;
}

/** Starts a worker serving `env.WORKER_MODELS`: one BullMQ Worker per model queue, sharing one engine. */
export async function startWorker(env: WorkerEnv, logger: Logger, hooks: WorkerHooks = {}): Promise<RunningWorker> {
  const metrics = new WorkerMetrics();
  const { engine, models } = await loadServingEngine(env, metrics, logger);
  const db = new Database(env.DATABASE_URL, {
    poolSize: 8,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) => logger.warn({ err: err.message, code: (err as { code?: string }).code }, "PostgreSQL connection lost; the pool reconnects"),
  });
  const store = new JobStore(db.pool, db.prisma);
  const connection = createRedis(env.REDIS_URL, "worker");
  const publisher = createRedis(env.REDIS_URL, "producer", { commandTimeout: env.REDIS_COMMAND_TIMEOUT_MS });
  // Deliveries run on their own BullMQ worker, so a slow receiver never holds an inference slot.
  const webhookQueue = new WebhookQueue(publisher, env.QUEUE_PREFIX);
  const chunks = new BatchChunkStore(db.pool);
  const webhookEvents = new WebhookEventStore(db.pool);
  const outcomes = new OutcomeSystem(
    { db, jobs: store, chunks, batches: new BatchStore(db.pool, db.prisma), events: webhookEvents, notifier: new FinishedNotifier(publisher, env.QUEUE_PREFIX), deliveries: webhookQueue, logger },
    hooks,
  );
  const dispatcher = new Dispatcher(publisher, { prefix: env.QUEUE_PREFIX, attempts: env.JOB_ATTEMPTS, backoffMs: env.RETRY_BACKOFF_MS });
  const processor = createProcessor({
    store,
    engine,
    outcomes,
    enqueue: (groups) => dispatcher.enqueue(groups),
    metrics,
    limits: { maxAttempts: env.JOB_ATTEMPTS, maxResultBytes: env.MAX_RESULT_BYTES, backoffMs: env.RETRY_BACKOFF_MS },
    gate: new ExclusiveGate(),
  });
  const workers = new ModelWorkers(models, processor, connection, env, logger);
  const reconciler = new Reconciler(new DispatchStore(db.pool), dispatcher, models, { intervalMs: env.RECONCILE_INTERVAL_MS, afterMs: env.RECONCILE_AFTER_MS, logger });
  reconciler.start();
  const retention = new RetentionSweeper(new RetentionStore(db.pool), { days: env.RETENTION_DAYS, intervalMs: env.RETENTION_INTERVAL_MS, logger });
  retention.start();
  const deadlines = new DeadlineSweeper(outcomes, { intervalMs: env.DEADLINE_SWEEP_INTERVAL_MS, logger });
  deadlines.start();
  const webhooks =
    env.WEBHOOK_CONCURRENCY > 0
      ? new WebhookWorker(webhookEvents, connection, webhookQueue, {
          prefix: env.QUEUE_PREFIX,
          concurrency: env.WEBHOOK_CONCURRENCY,
          tenantConcurrency: env.WEBHOOK_TENANT_CONCURRENCY,
          timeoutMs: env.WEBHOOK_TIMEOUT_MS,
          connectTimeoutMs: env.WEBHOOK_CONNECT_TIMEOUT_MS,
          schedule: env.WEBHOOK_RETRY_SCHEDULE_MS,
          allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
          maxBodyBytes: env.WEBHOOK_MAX_BODY_BYTES,
          sweepIntervalMs: env.WEBHOOK_SWEEP_INTERVAL_MS,
          sweepAfterMs: env.WEBHOOK_SWEEP_AFTER_MS,
          logger,
        })
      : undefined;
  const metricsServer: http.Server | undefined = metrics.serve(env.METRICS_PORT);
  logger.info({ models, concurrency: env.WORKER_CONCURRENCY }, "worker ready");

  return {
    models,
    metrics,
    reconciler,
    retention,
    deadlines,
    webhooks,
    async close() {
      await reconciler.stop();
      await retention.stop();
      await deadlines.stop();
      await workers.close(env.SHUTDOWN_TIMEOUT_MS);
      metricsServer?.close();
      await webhooks?.close();
      await webhookQueue.close();
      await dispatcher.close();
      await engine.close();
      await db.close();
      connection.disconnect();
      publisher.disconnect();
    },
  };
}
