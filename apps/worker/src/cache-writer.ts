import { keyMatchesFingerprint, type CacheMetrics, type ResultCache } from "@inferline/cache";
import type { CacheSpec } from "@inferline/contracts";

/** A succeeded result to offer to the cache: the digest the API stored with the work, and the result's JSON text as written. */
export interface CacheableResult {
  digest: string;
  resultJson: string;
}

/** What the cache writer needs to know of the models this worker loaded. */
export interface CachedModels {
  /** The model's cache settings from its manifest; undefined when it has none. */
  spec(model: string): CacheSpec | undefined;
  /** The fingerprint of the file this worker loaded for the version (contracts' modelFingerprint). */
  fingerprint(model: string, version: string): string;
}

/**
 * Stores succeeded results in the result cache after their write committed, under the model's
 * current CacheSpec (its TTL and maxEntryBytes), counting every result offered in
 * `inferline_cache_writes_total` (stored, too_large, failed, fingerprint_mismatch). A model
 * without a cache stores nothing, and neither does a result whose key the API computed for
 * another file than the one this worker loaded (a rolling deploy replacing a version's file):
 * each key holds only what its file produces. Never throws: a cache that refuses costs the next
 * identical request a run, nothing more.
 */
export class CacheWriter {
  constructor(
    private readonly cache: Pick<ResultCache, "setMany">,
    private readonly models: CachedModels,
    private readonly metrics: Pick<CacheMetrics, "writes">,
  ) {}

  async store(model: string, version: string, results: readonly CacheableResult[]): Promise<void> {
    if (results.length === 0) return;
    const spec = this.models.spec(model);
    if (!spec) return;
    const fingerprint = this.models.fingerprint(model, version);
    const own = results.filter((r) => keyMatchesFingerprint(r.digest, fingerprint));
    if (own.length < results.length) this.metrics.writes(model, "fingerprint_mismatch", results.length - own.length);
    if (own.length === 0) return;
    const { stored, tooLarge } = await this.cache.setMany(own, spec);
    if (stored > 0) this.metrics.writes(model, "stored", stored);
    if (tooLarge > 0) this.metrics.writes(model, "too_large", tooLarge);
    const failed = own.length - stored - tooLarge;
    if (failed > 0) this.metrics.writes(model, "failed", failed);
  }
}
