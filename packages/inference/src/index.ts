export { InferenceEngine, type BatchObserver } from "./engine.ts";
export { InProcessRunner, modelKey, type ModelRunner } from "./runner.ts";
export { ThreadPoolRunner } from "./thread-pool-runner.ts";
export { LoadedModel, type ItemOutcome, type SessionSettings } from "./loaded-model.ts";
export { DynamicBatcher, type BatcherOptions } from "./batcher.ts";
export { registerAdapter, type AdapterFactory } from "./adapters.ts";
export { defaultAdapter, type InferenceItem, type ModelAdapter, type PreparedItem, type SplitItem } from "./adapter.ts";
export { stackRows, sliceRows } from "./tensors.ts";
