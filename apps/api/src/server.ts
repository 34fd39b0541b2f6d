import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { ModelRepository } from "@inferline/contracts";
import { BatchChunkStore, BatchStore, Database, JobStore, TenantStore } from "@inferline/db";
import { BatchService, type BatchEventSink } from "./services/batch-service.ts";
import { createRedis, Dispatcher, FinishedListener, FinishedNotifier } from "@inferline/queue";
import { recordBatchCompleted, recordJobEvents, WebhookQueue, webhookTargetChecker } from "@inferline/webhooks";
import { createApp } from "./app.ts";
import type { ApiEnv } from "./env.ts";
import { ApiMetrics } from "./metrics.ts";
import { JobService, type EventSink } from "./services/job-service.ts";
import { SubmitWriter } from "./services/submit-writer.ts";

export interface RunningApi {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

/** Builds every dependency of the API and listens on env.PORT (0 picks a free port). */
export async function startApi(env: ApiEnv, logger: Logger): Promise<RunningApi> {
  const models = ModelRepository.load(env.MODELS_DIR);
  const db = new Database(env.DATABASE_URL, { poolSize: 16 });
  const redis = createRedis(env.REDIS_URL, "producer");
  const subscriber = createRedis(env.REDIS_URL, "worker");
  const dispatcher = new Dispatcher(redis, { prefix: env.QUEUE_PREFIX, attempts: env.JOB_ATTEMPTS, backoffMs: env.RETRY_BACKOFF_MS });
  const store = new JobStore(db.pool, db.prisma);
  const listener = await FinishedListener.start(subscriber, env.QUEUE_PREFIX);
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
  const jobs = new JobService(db, store, chunkStore, models, writer, listener, notifier, {
    maxQueueDepth: env.MAX_QUEUE_DEPTH,
    checkWebhook: webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE }),
    events,
    batchEvents,
  });
  const batches = new BatchService(db, batchStore, chunkStore, models, dispatcher, notifier, listener, {
    checkWebhook: webhookTargetChecker({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE }),
    events: batchEvents,
  });
  const app = createApp({ env, logger, db, redis, models, tenants: new TenantStore(db.prisma), jobs, batches, dispatcher, metrics: new ApiMetrics(), webhooks });

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
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Long-polls in flight get their current answer rather than hold shutdown for a minute.
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      });
      await listener.close();
      await dispatcher.close();
      await webhooks.close();
      await db.close();
      redis.disconnect();
    },
  };
}
