import "@inferline/runtime/load-dot-env";
import { waitForDependencies } from "@inferline/runtime";
import { assertPostgresReachable } from "@inferline/db";
import { assertRedisReachable, redisTarget } from "@inferline/queue";
import { loadApiEnv } from "./env.ts";
import { startingServer } from "./http-server.ts";
import { createLogger } from "./logger.ts";
import { startApi, type RunningApi } from "./server.ts";

/** Runs the API process: serves probes at once, waits for its dependencies, and drains on SIGTERM or SIGINT. */
export async function main(): Promise<void> {
  const env = loadApiEnv();
  const logger = createLogger(env.LOG_LEVEL, env.LOG_PRETTY, "api");
  let api: RunningApi | undefined = undefined;
  const waiting = new AbortController();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: draining requests");
    if (!api) {
      waiting.abort();
      return process.exit(0);
    }
    api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The port first: /healthz answers while PostgreSQL or Redis is still away, and the rest 503.
  const listening = await startingServer(env.PORT, env.HOST);
  await waitForDependencies(
    [
      { name: "PostgreSQL", check: () => assertPostgresReachable(env.DATABASE_URL) },
      { name: "Redis", check: () => assertRedisReachable(redisTarget(env)) },
    ],
    logger,
    waiting.signal,
  );
  api = await startApi(env, logger, listening);
}
