import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import bytes from "bytes";
import { ModelRepository } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database, JobStore, TenantStore } from "@inferline/db";
import { BatchService, type BatchEventSink } from "./services/batch-service.ts";
import { BatchUploadSlots } from "./services/batch-upload-slots.ts";
import { QueueDepthGuard } from "./services/queue-depth-guard.ts";
import { createRedis, Dispatcher, FinishedListener, FinishedNotifier, KeyRevocationListener } from "@inferline/queue";
import { recordBatchCompleted, recordJobEvents, WebhookQueue, webhookTargetChecker } from "@inferline/webhooks";
import { createApp } from "./app.ts";
import { ApiKeyAuth } from "./middleware/auth.ts";
import type { ApiEnv } from "./env.ts";
import { ApiMetrics } from "./metrics.ts";
import { JobService, type EventSink } from "./services/job-service.ts";
import { SubmitWriter } from "./services/submit-writer.ts";

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
  const notifier = new FinishedNotifier(redis, env.QUEUE_PREFIX);
  const writer = new SubmitWriter(store, dispatcher, logger);
  const webhooks = new WebhookQueue(redis, env.QUEUE_PREFIX);
  const batchStore = new BatchStore(db.pool, db.prisma);
  const chunkStore = new BatchChunkStore(db.pool);
  // What fails to enqueue stays pending in webhook_events, where the workers' sweep finds it.
  const enqueue = (ids: string[]) => webhooks.enqueue(ids).catch((err: Error) => logger.warn({ err: err.message }, "webhook enqueue failed; the sweep will retry"));
  const events: EventSink = { record: async (q, finished) => (await recordJobEvents(q, finished)).map((e) => e.id), enqueue };
  const batchEvents: BatchEventSink = {
    recordCompleted: async (q, s) => (await recordBatchCompleted(q, s.batchId, batchStore)).map((e) => e.id),
    enqueue,
  };
  // One MAX_QUEUE_DEPTH for single jobs and batch items.
  const depthGuard = new QueueDepthGuard((model) => store.pendingByModel(model), env.MAX_QUEUE_DEPTH);
  const jobs = new JobService(db, store, chunkStore, models, writer, listener, notifier, {
    depthGuard,
    checkWebhook: webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE }),
    events,
    batchEvents,
  });
  const batches = new BatchService(db, batchStore, chunkStore, models, dispatcher, notifier, listener, {
    depthGuard,
    uploads: new BatchUploadSlots({ perProcess: env.MAX_BATCH_UPLOADS, perTenant: env.MAX_BATCH_UPLOADS_PER_TENANT, waitMs: env.BATCH_UPLOAD_WAIT_MS }),
    maxLineBytes: bytes.parse(env.BATCH_MAX_LINE_BYTES ?? env.BODY_LIMIT) ?? 1024 * 1024,
    checkWebhook: webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE }),
    events: batchEvents,
  });
  const tenants = new TenantStore(db.prisma);
  const auth = new ApiKeyAuth(tenants, { cacheSize: env.AUTH_CACHE_SIZE, perAddressPerSecond: env.AUTH_RATE_LIMIT_PER_IP });
  // `keys revoke` announces revoked keys on the subscriber connection the long-polls already use.
  const revocations = await KeyRevocationListener.start(subscriber, env.QUEUE_PREFIX, {
    revoked: (keyHashes) => auth.evict(keyHashes),
    resubscribed: () => auth.invalidateAll(),
  });
  const app = createApp({ env, logger, db, redis, models, tenants, auth, jobs, batches, dispatcher, metrics: new ApiMetrics(), webhooks });

  const server = http.createServer(app);
  // Long-polls hold requests for up to 60 s; keep sockets open past that.
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(env.PORT, env.HOST, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  logger.info({ url, models: models.names() }, "api listening");

  return {
    server,
    url,
    auth,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Long-polls in flight get their current answer rather than hold shutdown for a minute.
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      });
      revocations.close();
      await listener.close();
      await dispatcher.close();
      await webhooks.close();
      await db.close();
      redis.disconnect();
    },
  };
}
