import { z } from "zod";
import { Datatype } from "./datatypes.ts";
import { ImageLimits } from "./image-header.ts";

export const DEFAULT_MAX_ROWS_PER_JOB = 1024;

export const TensorSpec = z
  .object({
    name: z.string().min(1),
    datatype: Datatype,
    /** -1 marks a dynamic dimension; the first dimension is the batch dimension when it is -1. */
    shape: z.array(z.number().int().min(-1)),
    /** Named features of a tabular input, in column order (used by the CLI's CSV mapping). */
    features: z.array(z.string()).optional(),
    /**
     * For a BYTES input of encoded images: the largest image each element may be, by its header.
     * Larger ones are refused at submit (PNG and JPEG) and by the worker before decoding (422 /
     * `invalid_image`).
     */
    image: ImageLimits.optional(),
    /** Class names of a classifier output, by index along the last dimension. */
    labels: z.array(z.string()).optional(),
    description: z.string().optional(),
  })
  .refine((spec) => !spec.image || spec.datatype === "BYTES", {
    message: "image limits apply to BYTES inputs only",
    path: ["image"],
  });
export type TensorSpec = z.infer<typeof TensorSpec>;

export const ModelVersionSpec = z
  .object({
    version: z.string().min(1),
    /** An ONNX file relative to the model's folder. */
    file: z.string().optional(),
    /** Or an ONNX file inside an installed npm package. */
    package: z.object({ name: z.string(), path: z.string() }).optional(),
  })
  .refine((v) => Boolean(v.file) !== Boolean(v.package), { message: "exactly one of file or package" });
export type ModelVersionSpec = z.infer<typeof ModelVersionSpec>;

export const BatchingSpec = z.object({
  /** Largest number of rows run in one session.run. Default 64. */
  maxBatchSize: z.number().int().min(1).default(64),
  /** How long the oldest waiting job may wait for others before its batch runs. Default 2 ms. */
  maxQueueDelayMs: z.number().min(0).default(2),
});
export type BatchingSpec = z.infer<typeof BatchingSpec>;

/** Default largest cached result, in bytes of its JSON (a larger result is not cached). */
export const DEFAULT_CACHE_MAX_ENTRY_BYTES = 256 * 1024;

/**
 * A model's result cache (opt-in; only for deterministic models): identical requests of one
 * tenant, model version and model file are answered from Redis without a run.
 */
export const CacheSpec = z.strictObject({
  /** How long a result is served, in seconds (1 to 30 days). Lowering it applies to entries already stored. */
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400),
  /** Largest result cached, in bytes of its JSON (1 to 16 MiB). Default 256 KiB. */
  maxEntryBytes: z
    .number()
    .int()
    .min(1)
    .max(16 * 1024 * 1024)
    .default(DEFAULT_CACHE_MAX_ENTRY_BYTES),
});
export type CacheSpec = z.infer<typeof CacheSpec>;

export const ModelManifest = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  description: z.string().optional(),
  versions: z.array(ModelVersionSpec).min(1),
  /** Version used when a request names none. Default: the last listed. */
  defaultVersion: z.string().optional(),
  inputs: z.array(TensorSpec).min(1),
  outputs: z.array(TensorSpec).min(1),
  /** Names of registered pre/post-processing steps. */
  preprocess: z.string().optional(),
  postprocess: z.string().optional(),
  batching: BatchingSpec.default({ maxBatchSize: 64, maxQueueDelayMs: 2 }),
  /**
   * Sessions of this model that run in parallel in a worker, each on its own thread (Triton's
   * instance_group count). 0 (the default) runs one session on the worker's main thread, which
   * suits tiny models; heavy ones need threads so inference never blocks the worker's I/O.
   */
  instances: z.number().int().min(0).max(64).default(0),
  /**
   * Longest one session run may take, pre- and post-processing included, in ms. A run past it
   * has its thread terminated and replaced, and its jobs fail as retriable (`inference_timeout`).
   * Enforced for models served from threads (`instances` >= 1); a run on the worker's main thread
   * cannot be interrupted. Default 60000; a worker's INFERENCE_TIMEOUT_MS, when set, overrides
   * every model's.
   */
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  /**
   * Most rows (along the batch dimension) one job or batch item may carry; more is a 422 at
   * submit. Bounds one job's inference time and result size (more rows belong in a batch).
   * Default 1024.
   */
  maxRowsPerJob: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_ROWS_PER_JOB),
  /** Queue deadline of this model's jobs and items that name none, in seconds (1 to 259200). Default: DEFAULT_MAX_QUEUE_SECONDS. */
  maxQueueSeconds: z.number().int().min(1).max(259_200).optional(),
  /** The result cache; absent, results are never cached. */
  cache: CacheSpec.optional(),
});
export type ModelManifest = z.infer<typeof ModelManifest>;
