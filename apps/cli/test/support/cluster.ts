import pino from "pino";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";
import { Database, TenantStore } from "@inferline/db";
import { createTestDatabase, deletePrefix, testRedisUrl, uniquePrefix, type TestDatabase } from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";

/** What `score --remote` tests run against: an API and a worker in this process, on a database and queue prefix of the test file's own. */
export interface TestCluster {
  api: RunningApi;
  /** Undefined while a test has stopped it (see startWorker). */
  worker: RunningWorker | undefined;
  db: TestDatabase;
  /** One connection for the test's own reads and keys. */
  admin: Database;
  /** Starts a worker with the cluster's settings again (after a test closed it) and sets `worker`. */
  startWorker(): Promise<RunningWorker>;
  /** A key of a new tenant named `name`. */
  createKey(name: string): Promise<{ key: string; tenantId: string }>;
  close(): Promise<void>;
}

export interface ClusterSettings {
  /** The worker's WORKER_MODELS (default iris). */
  workerModels?: string;
  /** MODELS_DIR of both processes (default: the repository's models). */
  modelsDir?: string;
  /** More API variables (DEFAULT_MAX_QUEUE_SECONDS…). */
  api?: Record<string, string>;
  /** More worker variables (DEADLINE_SWEEP_INTERVAL_MS…). */
  worker?: Record<string, string>;
}

const logger = pino({ level: "silent" });

/** Starts the API and a worker; periodic passes the tests do not need (reconciler, webhook sweep) are off. */
export async function startCluster(settings: ClusterSettings = {}): Promise<TestCluster> {
  const db = await createTestDatabase();
  const prefix = uniquePrefix();
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: "silent",
    ...(settings.modelsDir ? { MODELS_DIR: settings.modelsDir } : {}),
  };
  const workerEnv = {
    ...env,
    WORKER_MODELS: settings.workerModels ?? "iris",
    METRICS_PORT: "0",
    RECONCILE_INTERVAL_MS: "0",
    WEBHOOK_SWEEP_INTERVAL_MS: "0",
    ...settings.worker,
  };
  const api = await startApi(loadApiEnv({ ...env, PORT: "0", HOST: "127.0.0.1", ...settings.api }), logger);
  const admin = new Database(db.url, { poolSize: 1 });
  const cluster: TestCluster = {
    api,
    worker: undefined,
    db,
    admin,
    async startWorker() {
      cluster.worker = await startWorker(loadWorkerEnv(workerEnv), logger);
      return cluster.worker;
    },
    async createKey(name) {
      const created = await new TenantStore(admin.pool, admin.prisma).createKey(name);
      return { key: created.key, tenantId: created.tenant.id };
    },
    async close() {
      await cluster.worker?.close();
      await api.close();
      await admin.close();
      await db.drop();
      await deletePrefix(prefix);
    },
  };
  await cluster.startWorker();
  return cluster;
}
