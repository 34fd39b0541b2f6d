import type { Job as QueueEntry } from "bullmq";
import type { ClaimedJob, JobOutcome, JobStore } from "@inferline/db";
import type { InferenceEngine, ItemOutcome } from "@inferline/inference";
import type { DispatchPayload } from "@inferline/queue";
import type { OutcomeSink } from "./result-writer.ts";
import type { WorkerMetrics } from "./metrics.ts";

export interface ProcessorDeps {
  store: JobStore;
  engine: InferenceEngine;
  writer: OutcomeSink;
  metrics: WorkerMetrics;
}

function toOutcome(job: ClaimedJob, outcome: ItemOutcome): JobOutcome {
  return outcome.ok
    ? { id: job.id, status: "succeeded", result: outcome.result }
    : { id: job.id, status: "failed", errorCode: outcome.code, errorMessage: outcome.message };
}

/**
 * Processes one queue entry: claims its jobs (skipping canceled and finished ones), runs each
 * through the model's dynamic batcher (which merges them with other entries' jobs), and writes
 * the outcomes. A model error fails only its job; an infrastructure error (database, thread
 * crash) throws so BullMQ retries the entry with backoff, and the last attempt fails its jobs.
 */
export function createProcessor(deps: ProcessorDeps) {
  return async (entry: QueueEntry<DispatchPayload>): Promise<{ jobs: number }> => {
    if (entry.processedOn) deps.metrics.queueWaitSeconds.observe({ model: entry.queueName.replace(/^infer-/, "") }, Math.max(0, entry.processedOn - entry.timestamp) / 1000);
    let claimed: ClaimedJob[] = [];
    try {
      claimed = entry.data.markRunning === false ? await deps.store.read(entry.data.jobIds) : await deps.store.claim(entry.data.jobIds);
      const outcomes = await Promise.all(
        claimed.map(async (job) => toOutcome(job, await deps.engine.infer(job.model, job.version, { inputs: job.inputs, outputs: job.requestedOutputs }))),
      );
      const finished = await deps.writer.write(outcomes, entry.id);
      for (const f of finished) deps.metrics.jobsFinished.inc({ model: claimed[0]!.model, status: f.status });
      return { jobs: finished.length };
    } catch (err) {
      const lastAttempt = entry.attemptsMade + 1 >= (entry.opts.attempts ?? 1);
      if (lastAttempt && claimed.length > 0) {
        const message = `gave up after ${entry.attemptsMade + 1} attempts: ${(err as Error).message}`;
        await deps.writer.write(claimed.map((j) => ({ id: j.id, status: "failed", errorCode: "retries_exhausted", errorMessage: message })), entry.id);
      }
      throw err;
    }
  };
}
