import { InferlineError } from "@inferline/contracts";
import { assertPostgresReachable } from "@inferline/db";
import { assertRedisReachable, redisTarget } from "@inferline/queue";
import { loadWorkerEnv } from "./env.ts";
import { createLogger } from "./logger.ts";
import { startWorker } from "./worker-service.ts";

async function main(): Promise<void> {
  const env = loadWorkerEnv();
  const logger = createLogger(env.LOG_LEVEL, env.LOG_PRETTY, "worker");
  await Promise.all([assertPostgresReachable(env.DATABASE_URL), assertRedisReachable(redisTarget(env))]);
  const worker = await startWorker(env, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: finishing in-flight jobs");
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
}

main().catch((err: unknown) => {
  // Known start-up failures get one line that says what to do; anything else is a bug worth a stack.
  if (err instanceof InferlineError) console.error(`inferline worker: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
