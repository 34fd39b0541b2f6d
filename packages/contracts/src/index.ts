// The public surface of @inferline/contracts, named: what the other packages and apps may use.
export {
  InferlineError,
  ValidationError,
  NotFoundError,
  ConflictError,
  ServiceUnavailableError,
  OverloadedError,
  NonRetriableError,
  RetriableError,
  RetryAfterError,
  ConfigError,
  InvalidCursorError,
  INPUT_FAULT_CODES,
  isInputFault,
  type FieldFault,
} from "./errors.ts";
export { backoffDelay, type BackoffSchedule } from "./backoff.ts";
export { LogThrottle, DEFAULT_LOG_INTERVAL_MS, throttledLogger, type LevelLogger } from "./log-throttle.ts";
export { waitForDependencies, START_UP_BACKOFF, type DependencyCheck, type DependencyWaitLog } from "./dependency-wait.ts";
export { DATATYPES, Datatype, canonicalElement, elementExpectation, integerElement, zeroElement, type DatatypeFacts, type TensorElement } from "./datatypes.ts";
export { ImageLimits, readImageHeader, imageLimitFault, type ImageHeader } from "./image-header.ts";
export { ParameterValue, Tensor, elementCount, flattenData, type FlatTensor } from "./tensor.ts";
export { DEFAULT_MAX_ROWS_PER_JOB, DEFAULT_CACHE_MAX_ENTRY_BYTES, TensorSpec, ModelVersionSpec, BatchingSpec, CacheSpec, ModelManifest } from "./manifest.ts";
export { ModelRepository, modelFilePath, modelFingerprint, warmFingerprints, type ResolvedModel } from "./model-repository.ts";
export { validateInputs, validateOutputNames, type ValidatedInputs } from "./validate-inputs.ts";
export {
  isUuid,
  JobStatus,
  TERMINAL_STATUSES,
  isTerminal,
  JobPriority,
  WebhookEventType,
  WebhookSpec,
  Metadata,
  MaxQueueSeconds,
  CacheMode,
  OutputRequest,
  JobSubmission,
  SUBMISSION_DEFAULTS,
  type JobSubmissionInput,
  type WebhookTarget,
  JobListQuery,
  WaitQuery,
  Timestamp,
  JobError,
  OutputTensor,
  Classification,
  InferenceResult,
  JobView,
} from "./job.ts";
export {
  parseEnv,
  envBoolean,
  redactUrl,
  moduleList,
  SharedEnv,
  InferenceEnv,
  MigrationEnv,
  DEFAULT_DATABASE_URL,
  DEFAULT_REDIS_URL,
  DEFAULT_MODELS_DIR,
  DEFAULT_JOB_ATTEMPTS,
  DEFAULT_RETRY_BACKOFF_MS,
  type HostPort,
} from "./env.ts";
export {
  MAX_BATCH_ITEMS,
  BATCH_CHUNK_SIZE,
  BatchItem,
  BatchHeader,
  BatchSubmission,
  type BatchItemInput,
  type BatchHeaderInput,
  newBatchId,
  batchItemId,
  parseBatchItemId,
  BatchStatus,
  BatchView,
  BatchListQuery,
} from "./batch.ts";
export { StorableText, isStorableText, toStorableText, UNSTORABLE_TEXT_MESSAGE } from "./text.ts";
export { zodFaults } from "./faults.ts";
export { HopTrace, hops } from "./hop-trace.ts";
export { WorkerModelReport, VersionReadiness, ModelReadiness, summarizeReadiness } from "./model-readiness.ts";
export {
  JobListPage,
  BatchListPage,
  BatchResultLine,
  ModelView,
  modelView,
  ModelList,
  WebhookSecret,
  WebhookEvent,
  WebhookAttempt,
  JobWebhooks,
  WebhookRedelivery,
  ProblemField,
  Problem,
  DependencyState,
  ReadinessChecks,
  Healthz,
  Readyz,
  NotReady,
  V2Live,
  V2Ready,
  V2ModelMetadata,
  V2ModelReady,
  V2InferResponse,
  V2Error,
} from "./views.ts";
