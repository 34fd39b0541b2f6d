import type { CacheMetrics, ResultCache } from "@inferline/cache";
import type { CacheSpec } from "@inferline/contracts";

/** A succeeded result to offer to the cache: the digest the API stored with the work, and the result's JSON text as written. */
export interface CacheableResult {
  digest: string;
  resultJson: string;
}

/**
 * Stores succeeded results in the result cache after their write committed, under the model's
 * current CacheSpec (its TTL and maxEntryBytes), counting every result offered in
 * `inferline_cache_writes_total` (stored, too_large, failed). A model without a cache stores
 * nothing. Never throws: a cache that refuses costs the next identical request a run, nothing more.
 */
export class CacheWriter {
  constructor(
    private readonly cache: Pick<ResultCache, "setMany">,
    /** The model's cache settings from its manifest; undefined when it has none. */
    private readonly specOf: (model: string) => CacheSpec | undefined,
    private readonly metrics: Pick<CacheMetrics, "writes">,
  ) {}

  async store(model: string, results: readonly CacheableResult[]): Promise<void> {
    if (results.length === 0) return;
    const spec = this.specOf(model);
    if (!spec) return;
    const { stored, tooLarge } = await this.cache.setMany(results, spec);
    if (stored > 0) this.metrics.writes(model, "stored", stored);
    if (tooLarge > 0) this.metrics.writes(model, "too_large", tooLarge);
    const failed = results.length - stored - tooLarge;
    if (failed > 0) this.metrics.writes(model, "failed", failed);
  }
}
