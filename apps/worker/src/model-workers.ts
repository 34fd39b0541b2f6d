import { Worker, type Processor } from "bullmq";
import type { Logger } from "pino";
import { throttledLogger } from "@inferline/runtime";
import { bullmqPrefix, inferQueueName, type DispatchPayload, type RedisConnection } from "@inferline/queue";
import type { WorkerEnv } from "./env.ts";
import { ChunkRetryError } from "./entry-run.ts";
import type { ServedVersion } from "./serving-engine.ts";

/** BullMQ's limit on an entry's stalls, out of reach on purpose (see maxStalledCount below). */
const MAX_STALLS = 1000;

/**
 * One BullMQ Worker per queue of a model version this process loaded, all running one processor
 * (WORKER_CONCURRENCY entries at a time each). A version it lacks or failed to load has no Worker
 * here, so its jobs wait for a process that serves it instead of failing on this one.
 */
export class ModelWorkers {
  private readonly workers: Worker<DispatchPayload>[];
  private readonly outages;

  constructor(
    versions: ServedVersion[],
    processor: Processor<DispatchPayload>,
    connection: RedisConnection,
    env: WorkerEnv,
    private readonly logger: Logger,
  ) {
    this.outages = throttledLogger(logger);
    this.workers = versions.map((served) => this.start(served, processor, connection, env));
  }

  private start(
    { model, version }: ServedVersion,
    processor: Processor<DispatchPayload>,
    connection: RedisConnection,
    env: WorkerEnv,
  ): Worker<DispatchPayload> {
    const worker = new Worker<DispatchPayload>(inferQueueName(model, version), processor, {
      connection,
      prefix: bullmqPrefix(env.QUEUE_PREFIX, connection),
      concurrency: env.WORKER_CONCURRENCY,
      lockDuration: env.QUEUE_LOCK_MS,
      stalledInterval: env.QUEUE_LOCK_MS,
      // A stalled entry is one whose worker died. BullMQ would fail it after maxStalledCount
      // stalls without running it, leaving its jobs `running`; but a stall counts against every
      // entry the dead process held, even those still waiting at the gate and never claimed. The
      // count that matters is the claim's (attempts, checked against JOB_ATTEMPTS, which only runs
      // raise), so BullMQ's is set out of reach; the reconciler re-adds anything it fails anyway.
      maxStalledCount: MAX_STALLS,
    });
    // Every reconnect attempt while Redis is away errors: one line per 10 s says so.
    worker.on("error", (err) =>
      this.outages.error(
        { err: err.message, model, version },
        "queue error (connection, or an entry this worker no longer holds)",
      ),
    );
    worker.on("failed", (entry, err) => {
      if (err instanceof ChunkRetryError) return;
      this.logger.warn(
        { model, version, entry: entry?.id, attempt: entry?.attemptsMade, err: err.message },
        "queue entry failed",
      );
    });
    return worker;
  }

  /**
   * Stops taking work and lets in-flight entries finish, for up to `timeoutMs`; then hands them
   * back: each run still in flight gives back its claims, counting no attempt (a job on its last
   * one is not failed), and puts its entry back on the queue for another worker (see the
   * processor's handBack). A run that cannot within HAND_BACK_MS is left to its lock's expiry,
   * after which another worker's stalled check takes its entry.
   */
  async close(timeoutMs: number): Promise<void> {
    const graceful = Promise.all(this.workers.map((w) => w.close()));
    if (await settlesWithin(graceful, timeoutMs)) return;
    this.logger.warn("shutdown timeout: handing in-flight jobs back to the queue");
    for (const w of this.workers) w.cancelAllJobs("shutdown timeout");
    if (await settlesWithin(graceful, HAND_BACK_MS)) return;
    this.logger.warn("in-flight jobs not handed back in time: another worker takes them once their locks lapse");
  }
}

/** How long runs told to hand their entries back at shutdown may take to (a statement and a Redis command each). */
const HAND_BACK_MS = 5000;

/** Whether `work` settles within `ms`. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([work.then(() => true), sleep(ms).then(() => false)]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
