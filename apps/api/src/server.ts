import type http from "node:http";
import type { Logger } from "pino";
import bytes from "bytes";
import { ModelRepository } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database, DispatchStore, JobStore, TenantStore, WebhookEventStore } from "@inferline/db";
import { OutcomeSystem } from "@inferline/outcomes";
import { BatchService } from "./services/batch-service.ts";
import { BatchUploadSlots } from "./services/batch-upload-slots.ts";
import { QueueDepthGuard } from "./services/queue-depth-guard.ts";
import { TenantQuotaGuard } from "./services/quota-guard.ts";
import { QueueStatusService } from "./services/queue-status.ts";
import { createRedis, Dispatcher, FinishedListener, FinishedNotifier, KeyRevocationListener } from "@inferline/queue";
import { WebhookQueue, webhookTargetChecker } from "@inferline/webhooks";
import { createApp } from "./app.ts";
import { closeHttp, listenHttp } from "./http-server.ts";
import { ApiKeyAuth } from "./middleware/auth.ts";
import type { ApiEnv } from "./env.ts";
import { ApiMetrics } from "./metrics.ts";
import { JobService } from "./services/job-service.ts";
import { SubmitWriter } from "./services/submit-writer.ts";
import { TenantBacklog } from "./services/tenant-backlog.ts";

export interface RunningApi {
  server: http.Server;
  url: string;
  /** The process's key cache (tests read its sizes). */
  auth: ApiKeyAuth;
  close(): Promise<void>;
}

/** Builds every dependency of the API and listens on env.PORT (0 picks a free port). */
export async function startApi(env: ApiEnv, logger: Logger): Promise<RunningApi> {
  const models = ModelRepository.load(env.MODELS_DIR);
  const db = new Database(env.DATABASE_URL, {
    poolSize: 16,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    onConnectionError: (err) => logger.warn({ err: err.message, code: (err as { code?: string }).code }, "PostgreSQL connection lost; the pool reconnects"),
  });
  const redis = createRedis(env.REDIS_URL, "producer", { commandTimeout: env.REDIS_COMMAND_TIMEOUT_MS });
  // Named so an operator (or a fault test) can tell it apart in CLIENT LIST.
  const subscriber = createRedis(env.REDIS_URL, "worker", { connectionName: `${env.QUEUE_PREFIX}:api-subscriber` });
  const dispatcher = new Dispatcher(redis, { prefix: env.QUEUE_PREFIX, attempts: env.JOB_ATTEMPTS, backoffMs: env.RETRY_BACKOFF_MS });
  const store = new JobStore(db.pool, db.prisma);
  const listener = await FinishedListener.start(subscriber, env.QUEUE_PREFIX, { recheckMs: env.LONG_POLL_RECHECK_MS });
  const dispatches = new DispatchStore(db.pool);
  const writer = new SubmitWriter(store, dispatcher, new TenantBacklog((classes, leaveOut) => dispatches.queuedByClass(classes, leaveOut)), logger);
  const webhooks = new WebhookQueue(redis, env.QUEUE_PREFIX);
  const batchStore = new BatchStore(db.pool, db.prisma);
  const chunkStore = new BatchChunkStore(db.pool);
  const webhookEvents = new WebhookEventStore(db.pool);
  const outcomes = new OutcomeSystem({
    db,
    jobs: store,
    chunks: chunkStore,
    batches: batchStore,
    events: webhookEvents,
    notifier: new FinishedNotifier(redis, env.QUEUE_PREFIX),
    deliveries: webhooks,
    logger,
  });
  // One MAX_QUEUE_DEPTH for single jobs and batch items.
  const depthGuard = new QueueDepthGuard((model) => dispatches.pendingByModel(model), env.MAX_QUEUE_DEPTH);
  const quotaGuard = new TenantQuotaGuard((tenantId) => dispatches.queuedByTenant(tenantId), { defaultMaxQueued: env.DEFAULT_TENANT_MAX_QUEUED });
  const checkWebhook = webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE });
  const jobs = new JobService(outcomes, store, chunkStore, models, writer, listener, { depthGuard, quotaGuard, checkWebhook, defaultMaxQueueSeconds: env.DEFAULT_MAX_QUEUE_SECONDS });
  const batches = new BatchService(outcomes, batchStore, chunkStore, models, dispatcher, listener, {
    depthGuard,
    quotaGuard,
    uploads: new BatchUploadSlots({ perProcess: env.MAX_BATCH_UPLOADS, perTenant: env.MAX_BATCH_UPLOADS_PER_TENANT, waitMs: env.BATCH_UPLOAD_WAIT_MS }),
    maxLineBytes: bytes.parse(env.BATCH_MAX_LINE_BYTES ?? env.BODY_LIMIT) ?? 1024 * 1024,
    checkWebhook,
    defaultMaxQueueSeconds: env.DEFAULT_MAX_QUEUE_SECONDS,
  });
  const tenants = new TenantStore(db.pool, db.prisma);
  const auth = new ApiKeyAuth(tenants, { cacheSize: env.AUTH_CACHE_SIZE, perAddressPerSecond: env.AUTH_RATE_LIMIT_PER_IP });
  // `keys revoke` announces revoked keys on the subscriber connection the long-polls already use.
  const revocations = await KeyRevocationListener.start(subscriber, env.QUEUE_PREFIX, {
    revoked: (keyHashes) => auth.evict(keyHashes),
    resubscribed: () => auth.invalidateAll(),
  });
  const app = createApp({ env, logger, db, redis, models, tenants, auth, jobs, batches, queues: new QueueStatusService(dispatches), dispatcher, metrics: new ApiMetrics(), webhooks, webhookEvents });
  const { server, url } = await listenHttp(app, env.PORT, env.HOST);
  logger.info({ url, models: models.names() }, "api listening");

  return {
    server,
    url,
    auth,
    async close() {
      await closeHttp(server);
      revocations.close();
      await listener.close();
      await dispatcher.close();
      await webhooks.close();
      await db.close();
      redis.disconnect();
    },
  };
}
