import crypto from "node:crypto";
import { Queue, type JobsOptions } from "bullmq";
import { DEFAULT_JOB_ATTEMPTS, DEFAULT_RETRY_BACKOFF_MS, type JobPriority } from "@inferline/contracts";
import { addEntries, type QueueEntrySpec } from "./add-entries.ts";
import { entryPriority } from "./fair-priority.ts";
import { inferQueueName, type CarriedJob, type DispatchPayload } from "./names.ts";
import { bullmqPrefix, type RedisConnection } from "./redis.ts";

export interface DispatcherOptions {
  prefix: string;
  /** Attempts per queue entry before its jobs are failed. Default DEFAULT_JOB_ATTEMPTS (5). */
  attempts?: number;
  /** First retry delay in ms; doubles each attempt (with BullMQ's jitter). Default DEFAULT_RETRY_BACKOFF_MS (1000). */
  backoffMs?: number;
  /** Most jobs carried by one queue entry. Default 256. */
  maxJobsPerEntry?: number;
}

export interface DispatchGroup {
  dispatchId: string;
  model: string;
  version: string;
  priority: JobPriority;
  jobIds: string[];
  /** The entry carries a batch chunk (dispatchId is the chunk's id; jobIds is empty). */
  batchChunk?: boolean;
  /** Run no sooner than this many ms from now (a retry's backoff). */
  delayMs?: number;
  /** Its jobs were running when their worker died (see DispatchPayload.resumed). */
  resumed?: boolean;
  /** Its one job's run inputs (see CarriedJob). */
  carried?: CarriedJob;
  /** The tenant whose work it carries (an entry carries one tenant's). */
  tenantId?: string;
  /**
   * Fair share (see entryPriority): the tenant's queued work of this model and class ahead of the
   * entry, and the tenant's weight. Without them the entry goes to the front of its class.
   */
  rank?: number;
  weight?: number;
}

/**
 * Jitter of a queue entry's retries (BullMQ's "exponential" strategy, doubling from `backoffMs`):
 * each delay between half and all of its ceiling. The worker's own re-enqueues of retried items
 * use the same (its jobRetryBackoff).
 */
export const JOB_RETRY_JITTER = 0.5;

/**
 * Puts jobs on their model version's queue. Jobs travel in groups (one queue entry for many jobs) because
 * BullMQ's per-entry bookkeeping costs more than a small model's inference; each job keeps its
 * own row, status and result in PostgreSQL.
 */
export class Dispatcher {
  private readonly queues = new Map<string, Queue<DispatchPayload>>();
  readonly maxJobsPerEntry: number;
  private readonly defaults: JobsOptions;

  constructor(
    private readonly connection: RedisConnection,
    private readonly options: DispatcherOptions,
  ) {
    this.maxJobsPerEntry = options.maxJobsPerEntry ?? 256;
    this.defaults = {
      attempts: options.attempts ?? DEFAULT_JOB_ATTEMPTS,
      backoff: { type: "exponential", delay: options.backoffMs ?? DEFAULT_RETRY_BACKOFF_MS, jitter: JOB_RETRY_JITTER },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600 },
    };
  }

  /** The queue of one model version (see inferQueueName). */
  queue(model: string, version: string): Queue<DispatchPayload> {
    const name = inferQueueName(model, version);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<DispatchPayload>(name, {
        connection: this.connection,
        prefix: bullmqPrefix(this.options.prefix, this.connection),
      });
      queue.on("error", () => {});
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Splits job rows into groups of at most `size` (default maxJobsPerEntry), each with a fresh
   * dispatch id, and stamps every row with its group's id (rows are stored with it, so the
   * reconciler can find the entry).
   */
  plan(
    model: string,
    version: string,
    priority: JobPriority,
    rows: Array<{ id: string; dispatchId: string | null }>,
    size = this.maxJobsPerEntry,
  ): DispatchGroup[] {
    const groups: DispatchGroup[] = [];
    for (let i = 0; i < rows.length; i += size) {
      const slice = rows.slice(i, i + size);
      const dispatchId = crypto.randomUUID();
      for (const row of slice) row.dispatchId = dispatchId;
      groups.push({ dispatchId, model, version, priority, jobIds: slice.map((r) => r.id) });
    }
    return groups;
  }

  /** Adds the groups' queue entries, one addEntries per model version. Re-adding an existing dispatch id is a no-op. */
  async enqueue(groups: DispatchGroup[]): Promise<void> {
    const byQueue = new Map<Queue<DispatchPayload>, DispatchGroup[]>();
    for (const g of groups) {
      const queue = this.queue(g.model, g.version);
      const list = byQueue.get(queue);
      if (list) list.push(g);
      else byQueue.set(queue, [g]);
    }
    await Promise.all(
      [...byQueue].map(([queue, list]) =>
        addEntries(
          queue,
          list.map((g) => this.entry(g)),
        ),
      ),
    );
  }

  /**
   * Removes queue entries whose work all ended before a worker took them (see
   * DispatchStore.takeOff). An entry a worker holds already is left to it (BullMQ refuses to
   * remove a locked entry): its claim finds nothing to run.
   */
  async remove(entries: Array<{ id: string; model: string; version: string }>): Promise<void> {
    await Promise.all(entries.map((e) => this.queue(e.model, e.version).remove(e.id)));
  }

  private entry(g: DispatchGroup): QueueEntrySpec<DispatchPayload> {
    return {
      name: "infer",
      data: {
        jobIds: g.jobIds,
        version: g.version,
        ...(g.batchChunk ? { batchChunk: true } : {}),
        ...(g.resumed ? { resumed: true } : {}),
        ...(g.carried ? { carried: g.carried } : {}),
        ...(g.tenantId ? { tenantId: g.tenantId } : {}),
        ...(g.weight && g.weight !== 1 ? { weight: g.weight } : {}),
      },
      opts: {
        ...this.defaults,
        jobId: g.dispatchId,
        priority: entryPriority(g.priority, g.rank, g.weight),
        ...(g.delayMs ? { delay: g.delayMs } : {}),
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
