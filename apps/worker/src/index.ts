export { startWorker, type RunningWorker, type WorkerHooks } from "./worker-service.ts";
export { WorkerEnv, loadWorkerEnv } from "./env.ts";
export { createLogger } from "./logger.ts";
export { RetentionSweeper, type RetentionOptions, type RetentionPass } from "./retention.ts";
export { DeadlineSweeper, type DeadlineSweepOptions, type DeadlinePass } from "./deadline-sweeper.ts";
export { WorkerMetrics } from "./metrics.ts";
