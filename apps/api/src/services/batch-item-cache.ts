import { requestCacheKey, type CacheMetrics, type ResultCache } from "@inferline/cache";
import { type CacheSpec, type FlatTensor } from "@inferline/contracts";
import { type ResolvedModel } from "@inferline/runtime";
import { MAX_CHUNK_RESULT_BYTES } from "@inferline/db";

/** A chunk's items as the result cache sees them: each one's digest, and the results found (null: a miss; absent: no hit at all). */
export interface ChunkCacheState {
  cacheKeys: string[];
  hits?: Array<string | null>;
  hitCount: number;
}

export interface BatchItemCacheOptions {
  /** CACHE_COMMAND_TIMEOUT_MS: a lookup that takes this long did not answer, and the batch stops looking up. */
  commandTimeoutMs: number;
}

/**
 * The result cache for one batch's items: each item's digest (tenant, model, version, the model's
 * fingerprint, its validated inputs, the batch's requested outputs; see requestCacheKey), and one
 * lookup (MGET) per chunk. No single flight for batch items: the items of a batch are distinct
 * work, and identical items (within a batch or in two batches) each run. With `cache: "bypass"`
 * nothing is looked up, but digests are still kept, so the run refreshes the entries. Counts are
 * reported once the batch is created (a batch refused halfway through its body counts nothing).
 */
export class BatchItemCache {
  private hits = 0;
  private misses = 0;
  private bypassed = 0;
  /** Set once a lookup did not answer in time: the rest of this batch is looked up no more, so a dead cache costs a batch one timeout, not one per chunk. */
  private unanswered = false;

  private constructor(
    private readonly model: ResolvedModel,
    private readonly spec: CacheSpec,
    private readonly tenantId: string,
    private readonly requestedOutputs: string[],
    private readonly bypass: boolean,
    private readonly cache: Pick<ResultCache, "getMany">,
    private readonly options: BatchItemCacheOptions,
  ) {}

  /** The batch's cache, or undefined when the model's manifest sets none (its items are never cached). */
  static for(
    model: ResolvedModel,
    tenantId: string,
    settings: { requestedOutputs: string[]; bypass: boolean },
    cache: Pick<ResultCache, "getMany"> | undefined,
    options: BatchItemCacheOptions,
  ): BatchItemCache | undefined {
    const spec = model.manifest.cache;
    if (!spec || !cache) return undefined;
    return new BatchItemCache(model, spec, tenantId, settings.requestedOutputs, settings.bypass, cache, options);
  }

  /** Whether items are looked up (not a bypass): only then can a batch be answered, wholly or partly, without a run. */
  get looksUp(): boolean {
    return !this.bypass;
  }

  /**
   * Digests a chunk's items and looks them up in one MGET. Hits whose results would take the chunk
   * past the bytes a chunk row holds (MAX_CHUNK_RESULT_BYTES) are left to run, as they would
   * have been without the cache.
   */
  async chunk(inputs: readonly FlatTensor[][]): Promise<ChunkCacheState> {
    const cacheKeys = inputs.map((item) => requestCacheKey(this.tenantId, this.model, item, this.requestedOutputs));
    if (this.bypass) {
      this.bypassed += cacheKeys.length;
      return { cacheKeys, hitCount: 0 };
    }
    if (this.unanswered) {
      this.misses += cacheKeys.length;
      return { cacheKeys, hitCount: 0 };
    }
    const started = Date.now();
    const entries = await this.cache.getMany(cacheKeys, this.spec);
    let hitCount = 0;
    let bytes = 0;
    const hits = entries.map((entry) => {
      if (!entry) return null;
      bytes += Buffer.byteLength(entry.resultJson) + 2;
      if (bytes > MAX_CHUNK_RESULT_BYTES) return null;
      hitCount++;
      return entry.resultJson;
    });
    if (hitCount === 0 && Date.now() - started >= this.options.commandTimeoutMs) this.unanswered = true;
    this.hits += hitCount;
    this.misses += cacheKeys.length - hitCount;
    return hitCount > 0 ? { cacheKeys, hits, hitCount } : { cacheKeys, hitCount };
  }

  /** Counts this batch's lookups (once it is created). */
  report(metrics: Pick<CacheMetrics, "lookups">): void {
    const model = this.model.manifest.name;
    if (this.hits > 0) metrics.lookups(model, "hit", this.hits);
    if (this.misses > 0) metrics.lookups(model, "miss", this.misses);
    if (this.bypassed > 0) metrics.lookups(model, "bypass", this.bypassed);
  }
}
