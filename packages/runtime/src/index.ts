// The public surface of @inferline/runtime: what a process needs around the contracts (model files on
// disk, the .env, waiting for dependencies, throttled logs, backoff, hop traces).
export { backoffDelay, type BackoffSchedule } from "./backoff.ts";
export { LogThrottle, DEFAULT_LOG_INTERVAL_MS, throttledLogger, type LevelLogger } from "./log-throttle.ts";
export {
  waitForDependencies,
  START_UP_BACKOFF,
  type DependencyCheck,
  type DependencyWaitLog,
} from "./dependency-wait.ts";
export {
  ModelRepository,
  modelFilePath,
  modelFingerprint,
  warmFingerprints,
  type ResolvedModel,
} from "./model-repository.ts";
export { HopTrace, hops } from "./hop-trace.ts";
