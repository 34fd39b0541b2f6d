/** How a request met the cache: answered from it, ran the model, asked to bypass it, or waited on an identical request in flight. */
export type CacheLookupOutcome = "hit" | "miss" | "bypass" | "merged";

/**
 * What became of a result offered to the cache: `fingerprint_mismatch` when its key was computed
 * for another model file than the one that produced it (see keyMatchesFingerprint).
 */
export type CacheWriteOutcome = "stored" | "too_large" | "failed" | "fingerprint_mismatch";

/**
 * The counters a process keeps of its cache use, per model (the API counts lookups, the worker
 * writes). prom-client counters fit: see the API's and the worker's metrics.
 */
export interface CacheMetrics {
  lookups(model: string, outcome: CacheLookupOutcome, n?: number): void;
  writes(model: string, outcome: CacheWriteOutcome, n?: number): void;
}

/** Counts nothing (tests, and processes without metrics). */
export const NO_CACHE_METRICS: CacheMetrics = { lookups: () => {}, writes: () => {} };
