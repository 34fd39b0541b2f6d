import type { CacheMetrics, ResultCache } from "@inferline/cache";
import type { CacheSpec, InferenceResult } from "@inferline/contracts";
import type { AnsweredJob, FlightLeader, NewJob } from "@inferline/db";
import type { Followed } from "./submit-writer.ts";

/** A job of a model with a result cache: its digest is set (see JobService.prepare). */
export type CacheableJob = NewJob & { cacheKey: string };

/** How a job is stored (group-committed with the submits arriving meanwhile). */
export interface JobWrites {
  /** The depth and quota checks of a job that will wait for a worker (a hit waits for none, so it skips them); undefined when decided at once. */
  admit(): Promise<void> | undefined;
  /** Stores the job queued and enqueues it. */
  run(job: NewJob): Promise<void>;
  /** Stores the job answered from the cache. */
  answer(job: AnsweredJob): Promise<void>;
  /** Stores the job as a follower of `leader`'s run (see JobStore.insertFollowers). */
  follow(leader: FlightLeader, job: NewJob): Promise<Followed>;
}

/** Where the job went: queued (to run, or waiting on an identical job's run), answered from the cache, or answered from the stored result of the identical job it would have waited for. */
export type Placed =
  { kind: "queued" } | { kind: "answered"; result: InferenceResult; answeredAt: Date } | { kind: "answeredByLeader" };

const QUEUED: Placed = { kind: "queued" };

export interface JobResultCacheOptions {
  /** CACHE_COMMAND_TIMEOUT_MS: a lookup that took this long did not answer, so the job runs without claiming a flight (one timeout per submit, not two). */
  commandTimeoutMs?: number;
}

/** Rounds of trying to follow a flight before the job simply runs (each round after the first follows a leader that replaced one that ended without a result). */
const FOLLOW_ROUNDS = 2;

/**
 * The result cache on the submit path of single jobs. A hit is stored `succeeded` with the cached
 * result and never enqueued. On a miss the job claims the single flight of its digest: the first
 * of identical jobs in flight runs (its result is then stored by the worker, which ends the
 * flight), the others are stored as its followers and end with it. A follower whose leader ended
 * without a result (failed, canceled, expired) ends that flight and tries once more; one whose
 * leader is unknown to PostgreSQL (another process's, not inserted yet, or never stored) runs on
 * its own. Redis failing costs at most its command timeout per call: lookups miss, claims lead.
 */
export class JobResultCache {
  /** Leaders of this process whose insert is in flight: a follower of one waits for that insert before it locks the leader's row. */
  private readonly inserting = new Map<string, { jobId: string; inserted: Promise<void> }>();

  constructor(
    private readonly cache: Pick<ResultCache, "getMany" | "lead" | "land">,
    private readonly metrics: Pick<CacheMetrics, "lookups">,
    private readonly options: JobResultCacheOptions = {},
  ) {}

  async place(job: CacheableJob, spec: CacheSpec, bypass: boolean, writes: JobWrites): Promise<Placed> {
    if (bypass) {
      // No lookup and no flight; the digest stays on the row, so the run refreshes the entry.
      this.metrics.lookups(job.model, "bypass");
      await writes.admit();
      await writes.run(job);
      return QUEUED;
    }
    const started = Date.now();
    const [entry] = await this.cache.getMany([job.cacheKey], spec);
    const unanswered =
      this.options.commandTimeoutMs !== undefined && Date.now() - started >= this.options.commandTimeoutMs;
    const result = entry ? parseResult(entry.resultJson) : undefined;
    if (entry && result) {
      const answeredAt = new Date();
      await writes.answer({ ...job, resultJson: entry.resultJson, answeredAt });
      this.metrics.lookups(job.model, "hit");
      return { kind: "answered", result, answeredAt };
    }
    await writes.admit();
    // A lookup that ran into the command timeout: the cache is down or slow, and a flight claim would wait as long again.
    for (let round = 0; round < (unanswered ? 0 : FOLLOW_ROUNDS); round++) {
      const leaderId = await this.cache.lead(job.cacheKey, job.id);
      if (leaderId === null) return this.runAsLeader(job, writes);
      const local = this.inserting.get(job.cacheKey);
      if (local?.jobId === leaderId) await local.inserted.catch(() => {});
      const followed = await writes.follow({ id: leaderId, tenantId: job.tenantId, cacheKey: job.cacheKey }, job);
      if (followed.inserted) {
        const answered = followed.inserted.status === "succeeded";
        this.metrics.lookups(job.model, answered ? "hit" : "merged");
        return answered ? { kind: "answeredByLeader" } : QUEUED;
      }
      // Unknown to PostgreSQL: nothing to wait on, and the flight may still be live (another process's leader about to be stored).
      if (followed.leaderStatus === null) break;
      // The leader ended without a result to share: its flight is over; the next round leads or follows anew.
      await this.cache.land([{ digest: job.cacheKey, jobId: leaderId }]);
    }
    this.metrics.lookups(job.model, "miss");
    await writes.run(job);
    return QUEUED;
  }

  private async runAsLeader(job: CacheableJob, writes: JobWrites): Promise<Placed> {
    this.metrics.lookups(job.model, "miss");
    // Stored as the leader: its result write then also finishes its followers (see JobStore.finishFollowers).
    const inserted = writes.run({ ...job, leadsFlight: true });
    this.inserting.set(job.cacheKey, { jobId: job.id, inserted });
    try {
      await inserted;
      return QUEUED;
    } catch (err) {
      // Never stored: free the flight so that identical requests do not wait on a job that does not exist.
      await this.cache.land([{ digest: job.cacheKey, jobId: job.id }]);
      throw err;
    } finally {
      if (this.inserting.get(job.cacheKey)?.jobId === job.id) this.inserting.delete(job.cacheKey);
    }
  }
}

/** A cached entry's result, or undefined when it is not a JSON object (then it is a miss: the job runs, and its result replaces the entry). */
function parseResult(json: string): InferenceResult | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as InferenceResult)
      : undefined;
  } catch {
    return undefined;
  }
}
