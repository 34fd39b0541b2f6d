import type http from "node:http";
import { Worker } from "bullmq";
import type { Logger } from "pino";
import { ModelRepository, type ResolvedModel } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database, JobStore, type ChunkItemOutcome, type FinishedJob } from "@inferline/db";
import { InferenceEngine, InProcessRunner, ThreadPoolRunner, type ModelRunner } from "@inferline/inference";
import { createRedis, Dispatcher, FinishedNotifier, inferQueueName, type DispatchPayload } from "@inferline/queue";
import { recordBatchCompleted, recordJobEvents, WebhookQueue, WebhookWorker, type EventRef } from "@inferline/webhooks";
import type { WorkerEnv } from "./env.ts";
import { WorkerMetrics } from "./metrics.ts";
import { ChunkRetryError, createProcessor } from "./processor.ts";
import { ExclusiveGate } from "./exclusive-gate.ts";
import { Reconciler } from "./reconciler.ts";
import { RetentionSweeper } from "./retention.ts";
import { ResultWriter } from "./result-writer.ts";

/** BullMQ's limit on an entry's stalls, out of reach on purpose (see maxStalledCount below). */
const MAX_STALLS = 1000;

export interface WorkerHooks {
  /** Called after each result write with the jobs it finished (webhooks hang here). */
  onFinished?: (jobs: FinishedJob[]) => Promise<void>;
}

export interface RunningWorker {
  models: string[];
  metrics: WorkerMetrics;
  reconciler: Reconciler;
  retention: RetentionSweeper;
  /** Webhook delivery of this process (absent when WEBHOOK_CONCURRENCY is 0). */
  webhooks?: WebhookWorker;
  /** Stops taking work, lets in-flight entries finish (up to the shutdown timeout, then hands them back), and closes every connection. */
  close(): Promise<void>;
}

/** Starts a worker serving `env.WORKER_MODELS`: one BullMQ Worker per model queue, sharing one engine. */
export async function startWorker(env: WorkerEnv, logger: Logger, hooks: WorkerHooks = {}): Promise<RunningWorker> {
  const repo = ModelRepository.load(env.MODELS_DIR);
  const wanted = env.WORKER_MODELS.includes("*") ? repo.names() : env.WORKER_MODELS;
  const metrics = new WorkerMetrics();
  const settings = { intraOpThreads: env.INTRA_OP_THREADS, adapterModules: env.INFERENCE_ADAPTER_MODULES, timeoutOverrideMs: env.INFERENCE_TIMEOUT_MS, logger };
  const mainThread = new InProcessRunner(settings);
  // Tiny models run on this thread; a model with `instances` (or INFERENCE_THREADS) gets a thread pool of its own.
  const pools = new Map<string, ThreadPoolRunner>();
  const runnerFor = (m: ResolvedModel): ModelRunner => {
    const threads = env.INFERENCE_THREADS ?? m.manifest.instances;
    if (threads === 0) return mainThread;
    let pool = pools.get(m.manifest.name);
    if (!pool) pools.set(m.manifest.name, (pool = new ThreadPoolRunner(threads, settings)));
    return pool;
  };
  const engine = new InferenceEngine(runnerFor, {
    onBatch(model, version, items, rows, seconds) {
      metrics.batchSize.observe({ model, version }, items);
      metrics.batchRows.observe({ model, version }, rows);
      metrics.inferenceSeconds.observe({ model, version }, seconds);
    },
    onLoadFailed(model, version, err) {
      logger.error({ model, version, err: err.message }, "model failed to load; this worker does not serve it");
    },
  });
  // One model that fails to load (a bad file, a missing package) leaves the others served.
  const { served } = await engine.load(InferenceEngine.resolveAll(repo, wanted), { partial: true });
  const models = wanted.filter((m) => served.includes(m));

  const db = new Database(env.DATABASE_URL, {
    poolSize: 8,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) => logger.warn({ err: err.message, code: (err as { code?: string }).code }, "PostgreSQL connection lost; the pool reconnects"),
  });
  const store = new JobStore(db.pool, db.prisma);
  const connection = createRedis(env.REDIS_URL, "worker");
  const publisher = createRedis(env.REDIS_URL, "producer", { commandTimeout: env.REDIS_COMMAND_TIMEOUT_MS });
  const notifier = new FinishedNotifier(publisher, env.QUEUE_PREFIX);
  // Results, the queue entries they complete, and their webhook events are committed in one
  // transaction; deliveries are enqueued after commit and run on their own BullMQ worker, so a
  // slow receiver never holds an inference slot.
  const webhookQueue = new WebhookQueue(publisher, env.QUEUE_PREFIX);
  const batchStore = new BatchStore(db.pool, db.prisma);
  const chunks = new BatchChunkStore(db.pool);
  // What fails to enqueue stays pending in webhook_events, where the sweep finds it.
  const enqueueEvents = async (events: EventRef[]) => {
    if (events.length > 0) await webhookQueue.enqueue(events).catch((err: Error) => logger.warn({ err: err.message }, "webhook enqueue failed; the sweep will retry"));
  };
  const writer = new ResultWriter(
    (outcomes, dispatches) =>
      db.transaction(async (client) => {
        const finished = await store.finish(outcomes, dispatches, client);
        return { finished, recorded: await recordJobEvents(client, finished) };
      }),
    async ({ finished, recorded }) => {
      await notifier.publish(finished.map((f) => f.id));
      await enqueueEvents(recorded);
      await hooks.onFinished?.(finished);
    },
  );
  // A chunk is written on its own: one transaction already carries up to 512 items.
  const finishChunk = async (chunkId: string, outcomes: Array<ChunkItemOutcome | undefined>) => {
    const { finished, events } = await db.transaction(async (client) => {
      const finished = await chunks.finish(chunkId, outcomes, client);
      const events = finished?.settlement?.completed ? await recordBatchCompleted(client, finished.batchId, batchStore) : [];
      return { finished, events };
    });
    // Long-polls on the batch and on its items listen on the batch id: one message per chunk.
    if (finished && finished.finished > 0) await notifier.publish([finished.batchId]).catch(() => {});
    await enqueueEvents(events);
    return finished;
  };
  const dispatcher = new Dispatcher(publisher, { prefix: env.QUEUE_PREFIX, attempts: env.JOB_ATTEMPTS, backoffMs: env.RETRY_BACKOFF_MS });
  const processor = createProcessor({
    store,
    chunks,
    engine,
    writer,
    finishChunk,
    enqueue: (groups) => dispatcher.enqueue(groups),
    metrics,
    limits: { maxAttempts: env.JOB_ATTEMPTS, maxResultBytes: env.MAX_RESULT_BYTES, backoffMs: env.RETRY_BACKOFF_MS },
    gate: new ExclusiveGate(),
  });
  const workers = models.map((model) => {
    const worker = new Worker<DispatchPayload>(inferQueueName(model), processor, {
      connection,
      prefix: env.QUEUE_PREFIX,
      concurrency: env.WORKER_CONCURRENCY,
      lockDuration: env.QUEUE_LOCK_MS,
      stalledInterval: env.QUEUE_LOCK_MS,
      // A stalled entry is one whose worker died. BullMQ would fail it after maxStalledCount
      // stalls without running it, leaving its jobs `running`; but a stall counts against every
      // entry the dead process held, even those still waiting at the gate and never claimed. The
      // count that matters is the claim's (attempts, checked against JOB_ATTEMPTS, which only runs
      // raise), so BullMQ's is set out of reach; the reconciler re-adds anything it fails anyway.
      maxStalledCount: MAX_STALLS,
    });
    worker.on("error", (err) => logger.error({ err: err.message, model }, "queue error (connection, or an entry this worker no longer holds)"));
    worker.on("failed", (entry, err) => {
      if (err instanceof ChunkRetryError) return;
      logger.warn({ model, entry: entry?.id, attempt: entry?.attemptsMade, err: err.message }, "queue entry failed");
    });
    return worker;
  });
  const reconciler = new Reconciler(db, dispatcher, models, { intervalMs: env.RECONCILE_INTERVAL_MS, afterMs: env.RECONCILE_AFTER_MS, logger });
  reconciler.start();
  const retention = new RetentionSweeper(db, { days: env.RETENTION_DAYS, intervalMs: env.RETENTION_INTERVAL_MS, logger });
  retention.start();
  const webhooks =
    env.WEBHOOK_CONCURRENCY > 0
      ? new WebhookWorker(db, connection, webhookQueue, {
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
    webhooks,
    async close() {
      await reconciler.stop();
      await retention.stop();
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timedOut = await Promise.race([graceful.then(() => false), sleep(env.SHUTDOWN_TIMEOUT_MS).then(() => true)]);
      if (timedOut) {
        // Forced close leaves the entries' locks to expire; another worker's stalled check takes them.
        logger.warn("shutdown timeout: handing in-flight jobs back to the queue");
        await Promise.all(workers.map((w) => w.close(true)));
      }
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

