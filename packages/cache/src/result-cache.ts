import type { Redis } from "ioredis";
import type { CacheSpec } from "@inferline/contracts";

/** Where a degraded cache call is reported (a pino logger fits). */
export interface CacheLogger {
  warn(obj: object, msg?: string): void;
}

export interface ResultCacheOptions {
  /** Key prefix (the deployment's queue prefix): entries are `<prefix>:cache:r:<digest>`, flights `<prefix>:cache:f:<digest>`. */
  prefix: string;
  logger?: CacheLogger;
  /**
   * How long a single-flight claim holds, in ms (default 600000). A leader that dies without
   * landing frees it then; past it, an identical request leads a run of its own.
   */
  flightTtlMs?: number;
}

/** A result entry as read: its JSON and when it was stored (ms since the epoch). */
export interface CacheEntry {
  resultJson: string;
  storedAt: number;
}

export const DEFAULT_FLIGHT_TTL_MS = 600_000;

/** The commands the cache uses; a Cluster connection (`isCluster` true) has them too. */
export type CacheRedis = Pick<Redis, "mget" | "get" | "set" | "call" | "pipeline" | "isCluster">;

/** One command and its arguments (SET, EVAL), sent as is. */
type KeyCommand = [name: string, ...args: Array<string | number>];

// Deletes a flight only while it is still the named job's (another leader may hold it since).
const LAND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/**
 * The result cache in Redis: result entries with TTLs, and single-flight claims so that two
 * identical requests in flight run the model once. Every call degrades instead of failing: a read
 * that Redis refuses is a miss, a write is skipped, a claim leads (the model runs; the cache is an
 * optimisation, never a dependency of a request). Keys are digests (see cacheKeyDigest).
 */
export class ResultCache {
  private readonly flightTtlMs: number;

  constructor(
    private readonly redis: CacheRedis,
    private readonly options: ResultCacheOptions,
  ) {
    this.flightTtlMs = options.flightTtlMs ?? DEFAULT_FLIGHT_TTL_MS;
  }

  /**
   * The entries stored under `digests` (index-aligned; null for a miss). An entry older than the
   * model's current `ttlSeconds` is a miss, so lowering a TTL applies at once to what is stored.
   */
  async getMany(digests: readonly string[], spec: Pick<CacheSpec, "ttlSeconds">): Promise<Array<CacheEntry | null>> {
    if (digests.length === 0) return [];
    let raw: Array<string | null>;
    try {
      const keys = digests.map((d) => this.entryKey(d));
      // Digests hash to any slot, and a cluster refuses an MGET across slots (CROSSSLOT): one GET each there.
      raw = this.redis.isCluster
        ? await Promise.all(keys.map((k) => this.redis.get(k)))
        : await this.redis.mget(...keys);
    } catch (err) {
      this.degraded(err, "cache read failed; running the model");
      return digests.map(() => null);
    }
    const oldest = Date.now() - spec.ttlSeconds * 1000;
    return raw.map((value) => {
      const entry = value === null ? null : parseEntry(value);
      return entry && entry.storedAt >= oldest ? entry : null;
    });
  }

  /**
   * Stores results under their digests with the model's TTL; a result over `maxEntryBytes` is not
   * stored. Returns how many were stored and how many were too large (a refused write counts as neither).
   */
  async setMany(
    entries: ReadonlyArray<{ digest: string; resultJson: string }>,
    spec: CacheSpec,
  ): Promise<{ stored: number; tooLarge: number }> {
    const fitting = entries.filter((e) => Buffer.byteLength(e.resultJson) <= spec.maxEntryBytes);
    const tooLarge = entries.length - fitting.length;
    if (fitting.length === 0) return { stored: 0, tooLarge };
    const now = Date.now();
    try {
      const replies = await this.each(
        fitting.map((e) => ["set", this.entryKey(e.digest), `${now}:${e.resultJson}`, "PX", spec.ttlSeconds * 1000]),
      );
      // A pipeline on a dead connection resolves with each command's error rather than rejecting.
      const refused = replies.find(([err]) => err);
      if (refused) this.degraded(refused[0], "cache write failed; results are not cached");
      return { stored: replies.filter(([err]) => !err).length, tooLarge };
    } catch (err) {
      this.degraded(err, "cache write failed; results are not cached");
      return { stored: 0, tooLarge };
    }
  }

  /**
   * Claims the run of `digest` for job `jobId`. Null: this job leads (it runs the model and lands
   * the flight when its result is written) — also when Redis refuses, so a request never waits on
   * the cache. A string: the id of the job that already leads.
   */
  async lead(digest: string, jobId: string): Promise<string | null> {
    try {
      // SET NX GET (Redis >= 7.0): one round trip both claims and, when taken, names the holder.
      const holder = await this.redis.set(this.flightKey(digest), jobId, "PX", this.flightTtlMs, "NX", "GET");
      return holder === null || holder === jobId ? null : holder;
    } catch (err) {
      this.degraded(err, "cache flight claim failed; running the model");
      return null;
    }
  }

  /** Ends the flights these jobs lead (their results are written, or they failed), so the next identical request is answered from the entry or leads anew. */
  async land(flights: ReadonlyArray<{ digest: string; jobId: string }>): Promise<void> {
    if (flights.length === 0) return;
    try {
      const refused = (await this.each(flights.map((f) => ["eval", LAND, 1, this.flightKey(f.digest), f.jobId]))).find(
        ([err]) => err,
      );
      if (refused) this.degraded(refused[0], "cache flight release failed; the flights expire on their own");
    } catch (err) {
      this.degraded(err, "cache flight release failed; the flights expire on their own");
    }
  }

  /**
   * Runs single-key commands and resolves with each one's error or reply: in one pipeline on a
   * single Redis; on a cluster, whose pipelines must keep to one node, as separate commands that
   * ioredis sends to each key's node.
   */
  private async each(commands: readonly KeyCommand[]): Promise<Array<[Error | null, unknown]>> {
    if (!this.redis.isCluster) {
      const pipeline = this.redis.pipeline();
      for (const [name, ...args] of commands) pipeline.call(name, ...args);
      return (await pipeline.exec()) ?? [];
    }
    const settled = await Promise.allSettled(commands.map(([name, ...args]) => this.redis.call(name, ...args)));
    return settled.map((s) =>
      s.status === "fulfilled"
        ? [null, s.value]
        : [s.reason instanceof Error ? s.reason : new Error(String(s.reason)), null],
    );
  }

  private entryKey(digest: string): string {
    return `${this.options.prefix}:cache:r:${digest}`;
  }

  private flightKey(digest: string): string {
    return `${this.options.prefix}:cache:f:${digest}`;
  }

  private degraded(err: unknown, msg: string): void {
    this.options.logger?.warn({ err: (err as Error).message }, msg);
  }
}

function parseEntry(value: string): CacheEntry | null {
  const colon = value.indexOf(":");
  const storedAt = colon > 0 ? Number(value.slice(0, colon)) : NaN;
  return Number.isFinite(storedAt) ? { storedAt, resultJson: value.slice(colon + 1) } : null;
}
