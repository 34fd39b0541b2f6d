import type http from "node:http";
import type { Express } from "express";
import type { Logger } from "pino";
import { hops, ModelRepository, throttledLogger, warmFingerprints } from "@inferline/runtime";
import {
  BatchChunkStore,
  BatchStore,
  Database,
  DispatchStore,
  JobStore,
  TenantCapStore,
  TenantStore,
  WebhookEventStore,
} from "@inferline/db";
import { OutcomeSystem } from "@inferline/outcomes";
import { BatchService } from "./services/batch-service.ts";
import { TenantSlots } from "./services/tenant-slots.ts";
import { QueueDepthGuard } from "./services/queue-depth-guard.ts";
import { TenantQuotaGuard } from "./services/quota-guard.ts";
import { QueueStatusService } from "./services/queue-status.ts";
import { QueueReadings } from "./services/queue-readings.ts";
import { ResultCache } from "@inferline/cache";
import {
  createRedis,
  Dispatcher,
  FinishedListener,
  FinishedNotifier,
  KeyRevocationListener,
  ModelReadinessReader,
  redisTarget,
  runningUnderCap,
  tenantCapKey,
} from "@inferline/queue";
import { ModelAvailability } from "./services/model-availability.ts";
import { WebhookQueue, webhookTargetChecker } from "@inferline/webhooks";
import { createApp } from "./app.ts";
import { closeHttp, listenHttp } from "./http-server.ts";
import { ApiKeyAuth } from "./middleware/auth.ts";
import { RequestAdmission } from "./middleware/admission.ts";
import { batchByteLimits, type ApiEnv } from "./env.ts";
import { ApiMetrics } from "./metrics.ts";
import { JobService } from "./services/job-service.ts";
import { CapSizes } from "./services/cap-sizes.ts";
import { SubmitWriter } from "./services/submit-writer.ts";
import { JobResultCache } from "./services/job-result-cache.ts";
import { TenantBacklog } from "./services/tenant-backlog.ts";
import { startTelemetry } from "@inferline/telemetry";

/** Connections of the pool lists and result streams read on (see `scans`), beside the 16 of everything else. */
const SCAN_POOL_SIZE = 4;

export interface RunningApi {
  server: http.Server;
  url: string;
  /** The Express app behind the server's admission control (tests read its routes). */
  app: Express;
  /** The process's key cache (tests read its sizes). */
  auth: ApiKeyAuth;
  close(): Promise<void>;
}

/**
 * Builds every dependency of the API and listens on env.PORT (0 picks a free port), or serves on
 * `listening`, a server main.ts opened while it waited for PostgreSQL and Redis.
 */
export async function startApi(env: ApiEnv, logger: Logger, listening?: http.Server): Promise<RunningApi> {
  // OpenTelemetry traces, only when OTEL_EXPORTER_OTLP_ENDPOINT is set (see @inferline/telemetry).
  const telemetry = await startTelemetry("inferline-api");
  // The bench's hop trace, only when INFERLINE_TRACE_HOPS names a directory.
  hops.start(env.INFERLINE_TRACE_HOPS, env.INFERLINE_TRACE_HOPS_SAMPLE);
  const models = ModelRepository.load(env.MODELS_DIR);
  // The result cache keys on each version's file: read them now, not on a first request.
  warmFingerprints(models);
  // What a dependency's outage makes happen again and again is logged once per 10 s per kind.
  const outages = throttledLogger(logger);
  const db = new Database(env.DATABASE_URL, {
    poolSize: 16,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) =>
      outages.warn(
        { err: err.message, code: (err as { code?: string }).code },
        "PostgreSQL connection lost; the pool reconnects",
      ),
  });
  // Lists and result streams on a pool of their own: a tenant's slow scans never hold the connections submits need.
  const scans = new Database(env.DATABASE_URL, {
    poolSize: SCAN_POOL_SIZE,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) =>
      outages.warn(
        { err: err.message, code: (err as { code?: string }).code },
        "PostgreSQL connection lost; the pool reconnects",
      ),
  });
  const scanChunks = new BatchChunkStore(scans.pool);
  const redis = createRedis(redisTarget(env), "producer", { commandTimeout: env.REDIS_COMMAND_TIMEOUT_MS });
  // Named so an operator (or a fault test) can tell it apart in CLIENT LIST.
  const subscriber = createRedis(redisTarget(env), "worker", { connectionName: `${env.QUEUE_PREFIX}:api-subscriber` });
  // A connection of its own with a tight bound: a slow or dead cache costs a submit at most this, then the model runs.
  const cacheRedis = createRedis(env.CACHE_REDIS_URL ?? redisTarget(env), "producer", {
    commandTimeout: env.CACHE_COMMAND_TIMEOUT_MS,
    connectionName: `${env.QUEUE_PREFIX}:api-cache`,
  });
  const cache = new ResultCache(cacheRedis, { prefix: env.QUEUE_PREFIX, logger, flightTtlMs: env.CACHE_FLIGHT_TTL_MS });
  const dispatcher = new Dispatcher(redis, {
    prefix: env.QUEUE_PREFIX,
    attempts: env.JOB_ATTEMPTS,
    backoffMs: env.RETRY_BACKOFF_MS,
  });
  const store = new JobStore(db.pool, db.prisma);
  const listener = await FinishedListener.start(subscriber, env.QUEUE_PREFIX, { recheckMs: env.LONG_POLL_RECHECK_MS });
  const dispatches = new DispatchStore(db.pool);
  const webhooks = new WebhookQueue(redis, env.QUEUE_PREFIX);
  const batchStore = new BatchStore(db.pool, db.prisma);
  const chunkStore = new BatchChunkStore(db.pool);
  const webhookEvents = new WebhookEventStore(db.pool);
  const outcomes = new OutcomeSystem({
    db,
    jobs: store,
    chunks: chunkStore,
    batches: batchStore,
    dispatches,
    events: webhookEvents,
    notifier: new FinishedNotifier(redis, env.QUEUE_PREFIX),
    deliveries: webhooks,
    // Followers of a canceled or expired single-flight leader are released onto queue entries.
    entries: dispatcher,
    logger: outages,
  });
  // Answered jobs and single-flight followers are stored through the outcome path (with their events).
  const capStore = new TenantCapStore(db.pool);
  const capSizes = new CapSizes(() => capStore.all(), env.TENANT_CAP_CACHE_MS);
  await capSizes.start();
  const writer = new SubmitWriter(
    store,
    dispatcher,
    new TenantBacklog((classes, leaveOut) => dispatches.queuedByClass(classes, leaveOut)),
    outages,
    outcomes,
    (tenantId, model) => capSizes.entrySize(tenantId, model),
  );
  // One MAX_QUEUE_DEPTH for single jobs and batch items.
  const depthGuard = new QueueDepthGuard((model) => dispatches.pendingByModel(model), env.MAX_QUEUE_DEPTH);
  const quotaGuard = new TenantQuotaGuard((tenantId) => dispatches.queuedByTenant(tenantId), {
    defaultMaxQueued: env.DEFAULT_TENANT_MAX_QUEUED,
  });
  const checkWebhook = webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE });
  const metrics = new ApiMetrics();
  // The queue gauges of /metrics (the autoscaling signal): every model's queue in one read, at most once a second.
  metrics.watchQueues(
    new QueueReadings(dispatches, models.names(), {
      onFailure: (err) =>
        outages.warn({ err: err.message }, "reading the queue gauges failed; /metrics keeps the last values"),
    }),
  );
  // What live workers report about their models: /readyz details, /v2 model readiness, and 503
  // model_unavailable for a model version every reporting worker failed to load.
  const readinessReader = new ModelReadinessReader(redis, env.QUEUE_PREFIX);
  const availability = new ModelAvailability((names) => readinessReader.read(names), models, {
    onFailure: (err) =>
      outages.warn({ err: err.message }, "reading the workers' model readiness failed; submits are accepted meanwhile"),
  });
  const jobs = new JobService(outcomes, store, chunkStore, models, writer, listener, {
    availability,
    depthGuard,
    quotaGuard,
    checkWebhook,
    defaultMaxQueueSeconds: env.DEFAULT_MAX_QUEUE_SECONDS,
    cache: new JobResultCache(cache, metrics.cache, { commandTimeoutMs: env.CACHE_COMMAND_TIMEOUT_MS }),
    scans: { jobs: new JobStore(scans.pool, scans.prisma), items: scanChunks },
  });
  const byteLimits = batchByteLimits(env);
  const batches = new BatchService(outcomes, batchStore, chunkStore, models, dispatcher, listener, {
    availability,
    depthGuard,
    quotaGuard,
    uploads: new TenantSlots({
      perProcess: env.MAX_BATCH_UPLOADS,
      perTenant: env.MAX_BATCH_UPLOADS_PER_TENANT,
      waitMs: env.BATCH_UPLOAD_WAIT_MS,
    }),
    resultStreams: {
      // Refused at once: a stream lasts as long as its client reads, too long to queue behind.
      slots: new TenantSlots({
        perProcess: env.MAX_RESULT_STREAMS,
        perTenant: env.MAX_RESULT_STREAMS_PER_TENANT,
        waitMs: 0,
      }),
      pageBytes: byteLimits.pageBytes,
      idleMs: env.RESULT_STREAM_IDLE_MS,
      pages: scanChunks,
    },
    scans: new BatchStore(scans.pool, scans.prisma),
    maxLineBytes: byteLimits.maxLineBytes,
    checkWebhook,
    defaultMaxQueueSeconds: env.DEFAULT_MAX_QUEUE_SECONDS,
    cache,
    cacheMetrics: metrics.cache,
    cacheCommandTimeoutMs: env.CACHE_COMMAND_TIMEOUT_MS,
  });
  const tenants = new TenantStore(db.pool, db.prisma);
  const auth = new ApiKeyAuth(tenants, {
    cacheSize: env.AUTH_CACHE_SIZE,
    perAddressPerSecond: env.AUTH_RATE_LIMIT_PER_IP,
  });
  // `keys revoke` announces revoked keys on the subscriber connection the long-polls already use.
  const revocations = await KeyRevocationListener.start(subscriber, env.QUEUE_PREFIX, {
    revoked: (keyHashes) => auth.evict(keyHashes),
    resubscribed: () => auth.invalidateAll(),
  });
  // The queue status route shows the caller's concurrency caps and what runs under each (the workers' leases).
  const queues = new QueueStatusService(dispatches, undefined, {
    caps: (tenantId) => capStore.ofTenant(tenantId),
    running: (tenantId, model) => runningUnderCap(redis, tenantCapKey(env.QUEUE_PREFIX, tenantId, model)),
  });
  const app = createApp({
    env,
    logger,
    db,
    redis,
    models,
    tenants,
    auth,
    jobs,
    batches,
    queues,
    dispatcher,
    metrics,
    webhooks,
    webhookEvents,
    availability,
  });
  const admission = new RequestAdmission(env.MAX_REQUESTS_IN_FLIGHT);
  metrics.watchAdmission(admission);
  const { server, url } = await listenHttp(admission.wrap(app), env.PORT, env.HOST, listening);
  logger.info({ url, models: models.names() }, "api listening");

  return {
    server,
    url,
    app,
    auth,
    async close() {
      await closeHttp(server);
      revocations.close();
      capSizes.stop();
      await listener.close();
      await dispatcher.close();
      await webhooks.close();
      await db.close();
      await scans.close();
      redis.disconnect();
      cacheRedis.disconnect();
      // Last: the spans of the requests drained above are exported before the process exits.
      await telemetry.shutdown().catch((err: Error) => logger.warn({ err: err.message }, "flushing traces failed"));
    },
  };
}
