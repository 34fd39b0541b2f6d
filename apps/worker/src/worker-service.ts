import type http from "node:http";
import type { Logger } from "pino";
import { hops, throttledLogger } from "@inferline/runtime";
import {
  BatchChunkStore,
  BatchStore,
  Database,
  DispatchStore,
  JobStore,
  RetentionStore,
  TenantCapStore,
  WebhookEventStore,
} from "@inferline/db";
import { OutcomeSystem, type OutcomeHooks } from "@inferline/outcomes";
import { ResultCache } from "@inferline/cache";
import {
  createRedis,
  Dispatcher,
  FinishedNotifier,
  ModelReadinessPublisher,
  redisTarget,
  TenantLeases,
} from "@inferline/queue";
import { WebhookQueue, WebhookWorker } from "@inferline/webhooks";
import { startTelemetry } from "@inferline/telemetry";
import type { WorkerEnv } from "./env.ts";
import { WorkerMetrics } from "./metrics.ts";
import { createProcessor } from "./processor.ts";
import { CacheWriter } from "./cache-writer.ts";
import { ExclusiveGate } from "./exclusive-gate.ts";
import { RunTimes } from "./run-times.ts";
import { TenantCaps } from "./tenant-caps.ts";
import { SlotBound, type NextInLine } from "./slot-bound.ts";
import { ModelWorkers } from "./model-workers.ts";
import { Reconciler } from "./reconciler.ts";
import { DeadlineSweeper } from "./deadline-sweeper.ts";
import { RetentionSweeper } from "./retention.ts";
import { dependencyReadiness } from "./dependency-readiness.ts";
import { cachedModels, loadServingEngine, readinessReports, workerInstanceId } from "./serving-engine.ts";

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
  /** Why this worker is not ready (Redis or PostgreSQL away), or undefined when it is: its /readyz. */
  unready(): Promise<string | undefined>;
  /** Stops taking work, lets in-flight entries finish (up to the shutdown timeout, then hands them back), and closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts a worker serving `env.WORKER_MODELS`: one BullMQ Worker per model queue, sharing one
 * engine. `metrics`: already serving (main.ts opens its port before waiting for dependencies);
 * without it the worker makes its own and serves it on METRICS_PORT.
 */
export async function startWorker(
  env: WorkerEnv,
  logger: Logger,
  hooks: WorkerHooks = {},
  served?: WorkerMetrics,
): Promise<RunningWorker> {
  // What a dependency's outage makes happen again and again is logged once per 10 s per kind.
  const outages = throttledLogger(logger);
  const metrics = served ?? new WorkerMetrics();
  // OpenTelemetry traces, only when OTEL_EXPORTER_OTLP_ENDPOINT is set (see @inferline/telemetry).
  const telemetry = await startTelemetry("inferline-worker");
  // The bench's hop trace, only when INFERLINE_TRACE_HOPS names a directory.
  hops.start(env.INFERLINE_TRACE_HOPS, env.INFERLINE_TRACE_HOPS_SAMPLE);
  const serving = await loadServingEngine(env, metrics, logger);
  const { engine, models, repository } = serving;
  const db = new Database(env.DATABASE_URL, {
    poolSize: 8,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) =>
      outages.warn(
        { err: err.message, code: (err as { code?: string }).code },
        "PostgreSQL connection lost; the pool reconnects",
      ),
  });
  const store = new JobStore(db.pool, db.prisma);
  const connection = createRedis(redisTarget(env), "worker");
  const publisher = createRedis(redisTarget(env), "producer", { commandTimeout: env.REDIS_COMMAND_TIMEOUT_MS });
  // The result cache's own connection, tightly bounded: a slow or dead cache only skips storing results.
  const cacheRedis = createRedis(env.CACHE_REDIS_URL ?? redisTarget(env), "producer", {
    commandTimeout: env.CACHE_COMMAND_TIMEOUT_MS,
    connectionName: `${env.QUEUE_PREFIX}:worker-cache`,
  });
  const cache = new ResultCache(cacheRedis, { prefix: env.QUEUE_PREFIX, logger, flightTtlMs: env.CACHE_FLIGHT_TTL_MS });
  // Deliveries run on their own BullMQ worker, so a slow receiver never holds an inference slot.
  const webhookQueue = new WebhookQueue(publisher, env.QUEUE_PREFIX);
  const chunks = new BatchChunkStore(db.pool);
  const webhookEvents = new WebhookEventStore(db.pool);
  const dispatcher = new Dispatcher(publisher, {
    prefix: env.QUEUE_PREFIX,
    attempts: env.JOB_ATTEMPTS,
    backoffMs: env.RETRY_BACKOFF_MS,
  });
  const dispatches = new DispatchStore(db.pool);
  const outcomes = new OutcomeSystem(
    {
      db,
      jobs: store,
      chunks,
      batches: new BatchStore(db.pool, db.prisma),
      dispatches,
      events: webhookEvents,
      notifier: new FinishedNotifier(publisher, env.QUEUE_PREFIX),
      deliveries: webhookQueue,
      // Followers of a single-flight leader that expired or was canceled (the sweeps, claims) are released onto queue entries.
      entries: dispatcher,
      logger: outages,
    },
    {
      ...hooks,
      // Every job and batch item this process ends is counted by model and status (see WorkerMetrics).
      ended: (work) => {
        metrics.countEnded(work);
        hooks.ended?.(work);
      },
    },
  );
  const cacheWriter = new CacheWriter(cache, cachedModels(repository), metrics.cache);
  const capStore = new TenantCapStore(db.pool);
  const caps = new TenantCaps(
    {
      readCaps: () => capStore.all(),
      tenantOf: (id) => dispatches.tenantOf(id),
      leases: new TenantLeases(publisher, env.TENANT_CAP_LEASE_MS),
      onWait: (model) => metrics.tenantCapWaits.inc({ model }),
      logger: outages,
    },
    {
      prefix: env.QUEUE_PREFIX,
      cacheMs: env.TENANT_CAP_CACHE_MS,
      leaseMs: env.TENANT_CAP_LEASE_MS,
      waitMs: env.TENANT_CAP_WAIT_MS,
    },
  );
  const processor = createProcessor({
    store,
    chunks,
    engine,
    outcomes,
    enqueue: (groups) => dispatcher.enqueue(groups),
    metrics,
    limits: { maxAttempts: env.JOB_ATTEMPTS, maxResultBytes: env.MAX_RESULT_BYTES, backoffMs: env.RETRY_BACKOFF_MS },
    gate: new ExclusiveGate(),
    runTimes: new RunTimes(),
    ...(env.SLOT_HOLD_MS > 0
      ? { slots: new SlotBound(env.SLOT_HOLD_MS, nextInLine(dispatcher), (model) => metrics.slotYields.inc({ model })) }
      : {}),
    chunkCache: cacheWriter,
    jobCache: { results: cacheWriter, flights: cache },
    caps,
  });
  const workers = new ModelWorkers(serving.versions, processor, connection, env, logger);
  const reconciler = new Reconciler(new DispatchStore(db.pool), dispatcher, models, {
    intervalMs: env.RECONCILE_INTERVAL_MS,
    afterMs: env.RECONCILE_AFTER_MS,
    logger,
  });
  reconciler.start();
  const retention = new RetentionSweeper(new RetentionStore(db.pool), {
    days: env.RETENTION_DAYS,
    intervalMs: env.RETENTION_INTERVAL_MS,
    logger,
  });
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
          onAttempt: metrics.countWebhookAttempt,
        })
      : undefined;
  const unready = dependencyReadiness(db, [
    ["Redis", connection],
    ["Redis (producer)", publisher],
  ]);
  const metricsServer: http.Server | undefined = served ? undefined : metrics.serve(env.METRICS_PORT, unready);
  // Which models this worker serves and which failed to load, renewed in Redis for the API's
  // readiness answers and its 503 for a model no worker can serve (see ModelReadinessPublisher).
  // Published once the queues' BullMQ Workers exist, so "ready" means jobs are being claimed.
  const reports = readinessReports(workerInstanceId(), serving);
  metrics.showReadiness(reports);
  const readiness = new ModelReadinessPublisher(publisher, env.QUEUE_PREFIX, reports, {
    intervalMs: env.MODEL_HEARTBEAT_MS,
    onError: (err) =>
      outages.warn({ err: err.message }, "renewing the model readiness report failed; the next beat tries again"),
  });
  await readiness.start();
  logger.info({ models, concurrency: env.WORKER_CONCURRENCY }, "worker ready");

  return {
    models,
    metrics,
    reconciler,
    retention,
    deadlines,
    webhooks,
    unready,
    async close() {
      // First, so API processes stop counting this worker at once instead of after the reports' TTL.
      await readiness.stop();
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
      cacheRedis.disconnect();
      // Last: the spans of the work finished above are exported before the process exits.
      await telemetry.shutdown().catch((err: Error) => logger.warn({ err: err.message }, "flushing traces failed"));
    },
  };
}

/** The tenant of the entry first in line on a model version's queue (entries wait prioritized: none has priority 0). */
function nextInLine(dispatcher: Dispatcher): NextInLine {
  return async (model, version) => {
    const [next] = await dispatcher.queue(model, version).getPrioritized(0, 0);
    return next ? { tenantId: next.data.tenantId, priority: next.priority } : null;
  };
}
