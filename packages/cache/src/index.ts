export {
  cacheKeyDigest,
  requestCacheKey,
  fingerprintTag,
  keyMatchesFingerprint,
  type CacheKeyParts,
} from "./cache-key.ts";
export {
  ResultCache,
  DEFAULT_FLIGHT_TTL_MS,
  type CacheEntry,
  type CacheLogger,
  type ResultCacheOptions,
} from "./result-cache.ts";
export {
  NO_CACHE_METRICS,
  type CacheMetrics,
  type CacheLookupOutcome,
  type CacheWriteOutcome,
} from "./cache-metrics.ts";
