import "@inferline/runtime/load-dot-env";
import { waitForDependencies } from "@inferline/runtime";
import { assertPostgresReachable } from "@inferline/db";
import { assertRedisReachable, redisTarget } from "@inferline/queue";
import { loadWorkerEnv } from "./env.ts";
import { createLogger } from "./logger.ts";
import { WorkerMetrics } from "./metrics.ts";
import { startWorker, type RunningWorker } from "./worker-service.ts";

/** Runs the worker process: waits for its dependencies, starts, and stops cleanly on SIGTERM or SIGINT. */
export async function main(): Promise<void> {
  const env = loadWorkerEnv();
  const logger = createLogger(env.LOG_LEVEL, env.LOG_PRETTY, "worker");
  let worker: RunningWorker | undefined = undefined;
  const waiting = new AbortController();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: finishing in-flight jobs");
    if (!worker) {
      waiting.abort();
      return process.exit(0);
    }
    worker.close().then(
      () => {
        logger.info("worker stopped");
        process.exit(0);
      },
      (err: Error) => {
        logger.error({ err: err.message }, "unclean shutdown");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The probes first: alive while PostgreSQL or Redis is still away, and not ready until started.
  const metrics = new WorkerMetrics();
  metrics.serve(env.METRICS_PORT, async () =>
    worker ? worker.unready() : "starting: waiting for PostgreSQL and Redis",
  );
  await waitForDependencies(
    [
      { name: "PostgreSQL", check: () => assertPostgresReachable(env.DATABASE_URL) },
      { name: "Redis", check: () => assertRedisReachable(redisTarget(env)) },
    ],
    logger,
    waiting.signal,
  );
  worker = await startWorker(env, logger, {}, metrics);
}
