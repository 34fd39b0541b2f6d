import { InferlineError } from "@inferline/contracts";
import { assertPostgresReachable } from "@inferline/db";
import { assertRedisReachable, redisTarget } from "@inferline/queue";
import { loadApiEnv } from "./env.ts";
import { createLogger } from "./logger.ts";
import { startApi } from "./server.ts";

async function main(): Promise<void> {
  const env = loadApiEnv();
  const logger = createLogger(env.LOG_LEVEL, env.LOG_PRETTY, "api");
  await Promise.all([assertPostgresReachable(env.DATABASE_URL), assertRedisReachable(redisTarget(env))]);
  const api = await startApi(env, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: draining requests");
    api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  if (err instanceof InferlineError) console.error(`inferline api: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
