export { InferenceEngine, type BatchObserver, type LoadReport } from "./engine.ts";
export {
  InProcessRunner,
  modelKey,
  type ModelRunner,
  type ModelLoadFailure,
  type RunnerLogger,
  type RunnerSettings,
} from "./runner.ts";
export { ThreadPoolRunner } from "./thread-pool-runner.ts";
export { DEFAULT_RUN_TIMEOUT_MS, type ThreadPoolEvents, type ThreadPoolSettings } from "./thread-pool-settings.ts";
export { type ThreadTask, type ThreadTaskFactory, type ThreadTaskSpec, type TaskAnswer } from "./thread-task.ts";
export { denseReason, type DenseOutput, type DenseSegment } from "./dense-run.ts";
export { LoadedModel, type ItemOutcome, type SessionSettings } from "./loaded-model.ts";
export { DynamicBatcher, type BatcherOptions, type Share, type SubmitOptions } from "./batcher.ts";
export { registerAdapter, importAdapterModules, type AdapterFactory } from "./adapters.ts";
export { defaultAdapter, type InferenceItem, type ModelAdapter, type PreparedItem, type SplitItem } from "./adapter.ts";
export {
  stackRows,
  sliceRows,
  denseArray,
  denseTensor,
  setDenseElement,
  jsonElements,
  ortType,
  datatypeOf,
  DENSE_DATATYPES,
  type DenseArray,
  type NumericDatatype,
} from "./tensors.ts";
export { readOnnxSignature, type GraphSignature, type GraphTensor } from "./onnx-signature.ts";
