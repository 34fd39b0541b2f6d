import type { Job as QueueEntry } from "bullmq";
import type { BatchChunkStore, ChunkItemOutcome, ClaimedChunk, ClaimedJob, FinishedChunk, JobOutcome, JobStore } from "@inferline/db";
import type { InferenceEngine, ItemOutcome } from "@inferline/inference";
import type { DispatchPayload } from "@inferline/queue";
import type { OutcomeSink } from "./result-writer.ts";
import type { WorkerMetrics } from "./metrics.ts";

export interface ProcessorDeps {
  store: JobStore;
  chunks: BatchChunkStore;
  engine: InferenceEngine;
  writer: OutcomeSink;
  /** Writes a chunk's outcomes (with the batch's accounting and events) in one transaction. */
  finishChunk: (chunkId: string, outcomes: Array<ChunkItemOutcome | undefined>) => Promise<FinishedChunk | null>;
  metrics: WorkerMetrics;
}

function toOutcome(job: ClaimedJob, outcome: ItemOutcome): JobOutcome {
  return outcome.ok
    ? { id: job.id, status: "succeeded", result: outcome.result }
    : { id: job.id, status: "failed", errorCode: outcome.code, errorMessage: outcome.message };
}

function toChunkOutcome(outcome: ItemOutcome): ChunkItemOutcome {
  return outcome.ok ? { status: "succeeded", result: outcome.result } : { status: "failed", error: { code: outcome.code, message: outcome.message } };
}

/**
 * Processes one queue entry: its jobs, or the items of one batch chunk. Each item runs through
 * the model's dynamic batcher (which merges it with other entries' items into session runs),
 * and the outcomes are written together. A model error fails only its item; an infrastructure
 * error (database, thread crash) throws so BullMQ retries the entry with backoff, and the last
 * attempt fails what is left.
 */
export function createProcessor(deps: ProcessorDeps) {
  return async (entry: QueueEntry<DispatchPayload>): Promise<{ jobs: number }> => {
    if (entry.processedOn) deps.metrics.queueWaitSeconds.observe({ model: entry.queueName.replace(/^infer-/, "") }, Math.max(0, entry.processedOn - entry.timestamp) / 1000);
    const lastAttempt = entry.attemptsMade + 1 >= (entry.opts.attempts ?? 1);
    const giveUp = (err: unknown) => ({ code: "retries_exhausted", message: `gave up after ${entry.attemptsMade + 1} attempts: ${(err as Error).message}` });
    return entry.data.batchChunk ? processChunk(deps, entry.id!, lastAttempt, giveUp) : processJobs(deps, entry, lastAttempt, giveUp);
  };
}

type GiveUp = (err: unknown) => { code: string; message: string };

async function processJobs(deps: ProcessorDeps, entry: QueueEntry<DispatchPayload>, lastAttempt: boolean, giveUp: GiveUp): Promise<{ jobs: number }> {
  let claimed: ClaimedJob[] = [];
  try {
    claimed = await deps.store.claim(entry.data.jobIds);
    const outcomes = await Promise.all(
      claimed.map(async (job) => toOutcome(job, await deps.engine.infer(job.model, job.version, { inputs: job.inputs, outputs: job.requestedOutputs }))),
    );
    const finished = await deps.writer.write(outcomes, entry.id);
    for (const f of finished) deps.metrics.jobsFinished.inc({ model: claimed[0]!.model, status: f.status });
    return { jobs: finished.length };
  } catch (err) {
    if (lastAttempt && claimed.length > 0) {
      const { code, message } = giveUp(err);
      await deps.writer.write(claimed.map((j) => ({ id: j.id, status: "failed", errorCode: code, errorMessage: message })), entry.id);
    }
    throw err;
  }
}

async function processChunk(deps: ProcessorDeps, chunkId: string, lastAttempt: boolean, giveUp: GiveUp): Promise<{ jobs: number }> {
  let chunk: ClaimedChunk | null = null;
  try {
    chunk = await deps.chunks.claim(chunkId);
    // Finished or gone (a duplicate entry, or a batch canceled meanwhile): only its dispatch row may be left.
    if (!chunk) return { jobs: (await deps.finishChunk(chunkId, []))?.finished ?? 0 };
    const { model, version, requestedOutputs } = chunk;
    const outcomes = await Promise.all(
      chunk.items.map(async (inputs) => (inputs ? toChunkOutcome(await deps.engine.infer(model, version, { inputs, outputs: requestedOutputs })) : undefined)),
    );
    const finished = await deps.finishChunk(chunkId, outcomes);
    if (finished) {
      deps.metrics.jobsFinished.inc({ model, status: "succeeded" }, finished.succeeded);
      deps.metrics.jobsFinished.inc({ model, status: "failed" }, finished.failed);
    }
    return { jobs: finished?.finished ?? 0 };
  } catch (err) {
    if (lastAttempt && chunk) {
      const error = giveUp(err);
      await deps.finishChunk(chunkId, chunk.items.map((inputs) => (inputs ? { status: "failed", error } : undefined)));
    }
    throw err;
  }
}
