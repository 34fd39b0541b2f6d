import type { Job as QueueEntry } from "bullmq";
import { hops } from "@inferline/runtime";
import type { DispatchPayload } from "@inferline/queue";
import { type ProcessorDeps, type Delivery, modelOf } from "./entry-run.ts";
import { processJobs } from "./job-runs.ts";
import { processChunk } from "./chunk-runs.ts";

/**
 * Processes one queue entry: its jobs, or the items of one batch chunk. Each item runs through
 * the model's dynamic batcher (which merges it with other entries' items into session runs),
 * and the outcomes are written together. A model error fails only its item; a run that timed
 * out or crashed its thread is retried (the job on an entry of its own) up to maxAttempts; an
 * infrastructure error (database) throws so BullMQ retries the entry with backoff, and the last
 * attempt fails what is left. A worker that dies mid-entry makes every job of the entry a
 * suspect: each then runs on an entry of its own, alone in its process, so one job that kills
 * workers fails by itself (retries_exhausted, once claimed more than maxAttempts times). A run
 * still in flight when the worker's shutdown timeout passes hands its entry back (see handBack).
 */
export function createProcessor(deps: ProcessorDeps) {
  // Three parameters: BullMQ passes the abort signal only to a processor that declares it.
  return async (
    entry: QueueEntry<DispatchPayload>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<{ jobs: number }> => {
    if (hops.enabled && entry.data.jobIds) hops.markAll(entry.data.jobIds, "worker.picked");
    // Over its tenant's cap, the entry goes back to wait (nothing claimed, no attempt) and is seen again.
    const held = await deps.caps?.admit(entry, token);
    if (entry.processedOn)
      deps.metrics.queueWaitSeconds.observe(
        { model: modelOf(entry) },
        Math.max(0, entry.processedOn - entry.timestamp) / 1000,
      );
    const run: Delivery = { lastAttempt: entry.attemptsMade + 1 >= (entry.opts.attempts ?? 1), token, signal };
    try {
      return await (entry.data.batchChunk ? processChunk(deps, entry, run) : processJobs(deps, entry, run));
    } finally {
      await held?.release();
    }
  };
}
