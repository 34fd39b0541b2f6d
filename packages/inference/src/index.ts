export { InferenceEngine, type BatchObserver, type LoadReport } from "./engine.ts";
export { InProcessRunner, modelKey, type ModelRunner, type ModelLoadFailure, type RunnerLogger, type RunnerSettings } from "./runner.ts";
export { ThreadPoolRunner, DEFAULT_RUN_TIMEOUT_MS, type ThreadPoolEvents } from "./thread-pool-runner.ts";
export { LoadedModel, type ItemOutcome, type SessionSettings } from "./loaded-model.ts";
export { DynamicBatcher, type BatcherOptions } from "./batcher.ts";
export { registerAdapter, importAdapterModules, type AdapterFactory } from "./adapters.ts";
export { defaultAdapter, type InferenceItem, type ModelAdapter, type PreparedItem, type SplitItem } from "./adapter.ts";
export { stackRows, sliceRows } from "./tensors.ts";
