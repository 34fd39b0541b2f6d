import pino from "pino";
import { TenantStore, Database } from "@inferline/db";
import {
  ApiClient,
  createTestDatabase,
  createTestModelRepository,
  deletePrefix,
  testRedisUrl,
  uniquePrefix,
  type TestDatabase,
} from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker, type WorkerHooks } from "@inferline/worker";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";

export interface TestStack {
  db: TestDatabase;
  prefix: string;
  /** Holds the real iris model and the `lookup` test model. */
  modelsDir: string;
  api: RunningApi;
  /** Client of tenant "alpha". */
  alpha: ApiClient;
  /** Client of tenant "beta". */
  beta: ApiClient;
  anonymous: ApiClient;
  worker?: RunningWorker;
  apiEnv: Record<string, string>;
  workerEnv: Record<string, string>;
  startWorker(env?: Record<string, string>, hooks?: WorkerHooks): Promise<RunningWorker>;
  stopWorker(): Promise<void>;
  createKey(tenant: string): Promise<string>;
  close(): Promise<void>;
}

export const testLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/**
 * An API (on a free port) and optionally a worker, in this process, on a database and a queue
 * prefix of the test file's own. Everything is removed by close().
 */
export async function startStack(
  options: {
    worker?: boolean;
    api?: Record<string, string>;
    workerEnv?: Record<string, string>;
    faultModels?: boolean;
    cachedModels?: boolean;
    /** Edits the model repository before any process reads it (e.g. gives a fault model a result cache). */
    editModels?: (dir: string) => void;
    echoModels?: boolean;
    ocrTextLine?: boolean;
  } = {},
): Promise<TestStack> {
  const db = await createTestDatabase();
  const prefix = uniquePrefix();
  // Fault models (hang, crash, slow, poison) need FIXTURE_ADAPTERS_MODULE in the worker's INFERENCE_ADAPTER_MODULES.
  // `lookup-cached` (two versions, with a result cache) only where asked for, like the fault models.
  // Echo models of every datatype and ocr-text-line likewise.
  const { faultModels, cachedModels, echoModels, ocrTextLine } = options;
  const models = createTestModelRepository({ faultModels, cachedModels, echoModels, ocrTextLine });
  options.editModels?.(models.dir);
  const shared = {
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: "silent",
    MODELS_DIR: models.dir,
  };
  const apiEnv = { ...shared, PORT: "0", HOST: "127.0.0.1", RETRY_BACKOFF_MS: "50", ...options.api };
  const workerEnvBase = {
    ...shared,
    METRICS_PORT: "0",
    RECONCILE_INTERVAL_MS: "0",
    RETRY_BACKOFF_MS: "50",
    SHUTDOWN_TIMEOUT_MS: "5000",
    ...options.workerEnv,
  };
  const api = await startApi(loadApiEnv(apiEnv), testLogger);
  const admin = new Database(db.url, { poolSize: 1 });
  const tenants = new TenantStore(admin.pool, admin.prisma);
  const createKey = async (tenant: string) => (await tenants.createKey(tenant)).key;
  const [alphaKey, betaKey] = [await createKey("alpha"), await createKey("beta")];

  const stack: TestStack = {
    db,
    prefix,
    modelsDir: models.dir,
    api,
    alpha: new ApiClient(api.url, alphaKey),
    beta: new ApiClient(api.url, betaKey),
    anonymous: new ApiClient(api.url),
    apiEnv,
    workerEnv: workerEnvBase,
    createKey,
    async startWorker(env = {}, hooks = {}) {
      stack.worker = await startWorker(loadWorkerEnv({ ...workerEnvBase, ...env }), testLogger, hooks);
      return stack.worker;
    },
    async stopWorker() {
      await stack.worker?.close();
      stack.worker = undefined;
    },
    async close() {
      await stack.stopWorker();
      await api.close();
      await admin.close();
      await db.drop();
      await deletePrefix(prefix);
      models.remove();
    },
  };
  if (options.worker ?? true) await stack.startWorker();
  return stack;
}
