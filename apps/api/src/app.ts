import express, { type Express } from "express";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { ModelRepository } from "@inferline/runtime";
import type { Database, JobWebhookStore, WebhookSecretStore } from "@inferline/db";
import type { WebhookQueue } from "@inferline/webhooks";
import type { ApiEnv } from "./env.ts";
import type { ApiKeyAuth } from "./middleware/auth.ts";
import { rateLimit } from "./middleware/rate-limit.ts";
import { problemHandler, sendProblem } from "./problem.ts";
import { healthRouter, readiness } from "./routes/health.ts";
import { jobsRouter, submitJobHandler } from "./routes/jobs.ts";
import { listSlots } from "./routes/list-handler.ts";
import { serverSpan } from "./middleware/server-span.ts";
import { batchesRouter } from "./routes/batches.ts";
import type { BatchService } from "./services/batch-service.ts";
import { modelsRouter } from "./routes/models.ts";
import { v2Router } from "./routes/v2.ts";
import { adminRouter } from "./routes/admin.ts";
import swaggerUi from "swagger-ui-express";
import { openApiDocument } from "./openapi.ts";
import type { Dispatcher } from "@inferline/queue";
import { webhooksRouter } from "./routes/webhooks.ts";
import type { JobService } from "./services/job-service.ts";
import type { QueueStatusService } from "./services/queue-status.ts";
import type { ApiMetrics } from "./metrics.ts";
import { WaiterLimit } from "./services/long-poll.ts";
import { longPollAdmission } from "./routes/long-poll-handler.ts";
import type { ModelAvailability } from "./services/model-availability.ts";

export interface AppDeps {
  env: ApiEnv;
  logger: Logger;
  /** Readiness pings PostgreSQL through it. */
  db: Pick<Database, "ping">;
  redis: Redis | Cluster;
  models: ModelRepository;
  /** The tenants' webhook signing secrets. */
  tenants: WebhookSecretStore;
  /** Key authentication and its cache, shared by /v1 and /v2 (server.ts feeds it revocations). */
  auth: ApiKeyAuth;
  jobs: JobService;
  batches: BatchService;
  /** GET /v1/models/:name/queue. */
  queues: QueueStatusService;
  dispatcher: Dispatcher;
  metrics: ApiMetrics;
  /** Producer of the webhooks queue (redeliveries). */
  webhooks: WebhookQueue;
  /** The webhook record of jobs, and their manual redeliveries. */
  webhookEvents: JobWebhookStore;
  /** Model readiness as live workers report it (/readyz details, /v2/models/:name/ready). */
  availability?: ModelAvailability;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(deps.metrics.middleware());
  // POST /v1/jobs first of all, on the app itself: every router and middleware a submit passes
  // costs on the hottest route, and Express walks each router's layers to find the one it wants.
  const json = express.json({ limit: deps.env.BODY_LIMIT, strict: true, type: () => true });
  const authenticate = deps.auth.middleware();
  const limited = rateLimit(deps.env.RATE_LIMIT_PER_SECOND);
  app.post("/v1/jobs", authenticate, limited, json, serverSpan("/v1/jobs"), submitJobHandler(deps.jobs, deps.metrics));
  app.use(healthRouter(deps));
  app.get("/metrics", async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  const v1 = express.Router();
  v1.use(authenticate, limited);
  // One cap for every kind of long-poll (jobs, batches, v2 infer) of a tenant in this process.
  const waiters = new WaiterLimit(deps.env.LONG_POLL_MAX_WAITERS_PER_TENANT, {
    waiters: deps.metrics.longPollWaiters,
    rejected: deps.metrics.longPollRejected,
  });
  v1.get(["/jobs/:id", "/batches/:id"], longPollAdmission(waiters));
  // One set of list slots for jobs and batches: MAX_LISTS_PER_TENANT counts both.
  const lists = listSlots(deps.env.MAX_LISTS_PER_TENANT);
  v1.use("/jobs", json, jobsRouter(deps.jobs, lists));
  // Batches parse their own (larger, possibly streamed) bodies.
  v1.use("/batches", batchesRouter(deps.batches, deps.env.BATCH_BODY_LIMIT, lists, deps.metrics));
  v1.use("/models", modelsRouter(deps.models, deps.queues));
  v1.use(
    json,
    webhooksRouter({
      tenants: deps.tenants,
      events: deps.webhookEvents,
      webhooks: deps.webhooks,
      rotationWindowSeconds: deps.env.WEBHOOK_ROTATION_WINDOW_S,
      maxRedeliveries: deps.env.WEBHOOK_MAX_REDELIVERIES,
    }),
  );
  app.use("/v1", v1);

  const openapi = openApiDocument();
  app.get("/openapi.json", (_req, res) => void res.json(openapi));
  app.use("/docs", swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: "Inferline API" }));
  const inferQueues = deps.models
    .names()
    .flatMap((m) => deps.models.manifest(m).versions.map((v) => deps.dispatcher.queue(m, v.version)));
  app.use(adminRouter(deps.env.ADMIN_API_KEY, [...inferQueues, deps.webhooks.queue]));
  app.use(
    "/v2",
    v2Router({
      models: deps.models,
      jobs: deps.jobs,
      ready: async () => (await readiness(deps)).ready,
      auth: [authenticate, limited],
      bodyLimit: deps.env.BODY_LIMIT,
      timeoutSeconds: deps.env.V2_INFER_TIMEOUT_S,
      waiters,
      metrics: deps.metrics,
      availability: deps.availability,
    }),
  );

  app.use((req, res) => sendProblem(res, 404, "route_not_found", `no route for ${req.method} ${req.path}`));
  app.use(problemHandler(deps.logger));
  return app;
}
