// What every run of a queue entry shares, whether it carries jobs or a batch chunk: the
// processor's dependencies and limits, a delivery, handing an entry (or its rest) back, the
// tenant site a run slices for, and how a run's outcome becomes a job's or an item's.

import { WaitingError, type Job as QueueEntry } from "bullmq";
import type { BatchChunkStore, JobStore } from "@inferline/db";
import { RetriableError, type JobError } from "@inferline/contracts";
import type { InferenceEngine, ItemOutcome, Share } from "@inferline/inference";
import { parseInferQueueName, type DispatchGroup, type DispatchPayload } from "@inferline/queue";
import type { OutcomeSystem } from "@inferline/outcomes";
import type { WorkerMetrics } from "./metrics.ts";
import type { ExclusiveGate } from "./exclusive-gate.ts";
import type { CacheWriter } from "./cache-writer.ts";
import type { ResultCache } from "@inferline/cache";
import type { RunTimes } from "./run-times.ts";
import type { TenantCaps } from "./tenant-caps.ts";
import { yieldedPriority, type SliceSite, type SlotBound } from "./slot-bound.ts";

export interface ProcessorLimits {
  /** Attempts of a job (or a chunk) before it fails for good (JOB_ATTEMPTS). */
  maxAttempts: number;
  /** Largest result of one job or item, as JSON bytes (MAX_RESULT_BYTES). */
  maxResultBytes: number;
  /** First delay before a job whose run timed out or crashed runs again, ms; doubles per attempt. */
  backoffMs: number;
}

export interface ProcessorDeps {
  store: Pick<JobStore, "isolate" | "isQueued" | "releaseClaims">;
  /** Where a chunk's claim is given back when its run is handed back at shutdown. */
  chunks: Pick<BatchChunkStore, "releaseClaim">;
  engine: InferenceEngine;
  /**
   * Where work is claimed (what is past a deadline ends there instead of running) and results are
   * written: jobs group-committed, a chunk's items in one transaction of their own.
   */
  outcomes: Pick<OutcomeSystem, "claimJobs" | "claimChunk" | "finishJobs" | "finishChunk" | "finishUnclaimed">;
  /** Adds queue entries (for jobs moved onto entries of their own). */
  enqueue: (groups: DispatchGroup[]) => Promise<void>;
  metrics: WorkerMetrics;
  limits: ProcessorLimits;
  /** Runs ordinary entries side by side and entries whose worker died alone. */
  gate: ExclusiveGate;
  /** Each model's job run times here: a lone small job of a fast one runs before its claim (see runCarried). Absent: every job is claimed first. */
  runTimes?: RunTimes;
  /** Bounds a slot's hold while another tenant waits: entries run in slices and hand back their rest (see SlotBound). Absent: each entry runs whole. */
  slots?: SlotBound;
  /** Stores succeeded results of batch items (of models with a cache) once their chunk's write committed; absent, nothing is cached. */
  chunkCache?: Pick<CacheWriter, "store">;
  /**
   * Jobs of models with a cache: stores succeeded results once their write committed, then ends
   * the single flights of the jobs that finished (succeeded or failed; see ResultCache.land), so
   * the next identical request is answered from the entry or leads a run of its own.
   */
  jobCache?: { results: Pick<CacheWriter, "store">; flights: Pick<ResultCache, "land"> };
  /** Per-tenant concurrency caps: an entry over its cap waits on the delayed set before anything is claimed. Absent: no caps. */
  caps?: Pick<TenantCaps, "admit">;
}

/**
 * Thrown once an entry was handed back at shutdown (see handBack): it is on its queue again, and
 * BullMQ counts no attempt for it.
 */
export class HandedBackError extends WaitingError {}

/** One delivery of an entry, as its run sees it. */
export interface Delivery {
  /** The entry's last attempt: what a run cannot finish fails for good. */
  lastAttempt: boolean;
  /** BullMQ's lock token of this delivery. */
  token?: string;
  /** Aborted when the worker's shutdown timeout passes (see ModelWorkers.close): the run hands its entry back. */
  signal?: AbortSignal;
}

/** Thrown to have BullMQ run a chunk's entry again with backoff (its retriable items, one at a time). */
export class ChunkRetryError extends RetriableError {
  constructor(message: string) {
    super("chunk_retry", message);
  }
}

/**
 * Hands the entry back at shutdown: gives back what its run claimed (`release`: no attempt is
 * counted against the work, which failed nothing) and puts it back on its queue, where another
 * worker takes it as a first delivery. Best effort: a claim that cannot be given back stays
 * counted, and an entry that cannot be moved is taken once its lock lapses.
 */
export async function handBack(entry: QueueEntry<DispatchPayload>, run: Delivery, release: Release): Promise<never> {
  await release().catch(() => {});
  await entry.moveToWait(run.token);
  throw new HandedBackError();
}

/**
 * `work`'s value, unless the worker's shutdown timeout passes first: then the entry is handed
 * back (see handBack) and `work` goes on unheeded (closing the engine ends it).
 */
export async function orHandBack<T>(
  work: Promise<T>,
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
  release: Release,
): Promise<T> {
  const { signal } = run;
  if (!signal) return work;
  let onAbort = (): void => {};
  const aborted = new Promise<{ aborted: true }>((resolve) => (onAbort = () => resolve({ aborted: true })));
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    const first = await Promise.race([work.then((value) => ({ value })), aborted]);
    if ("value" in first) return first.value;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return handBack(entry, run, release);
}

/**
 * Hands the rest of an entry back to its queue once its slot was held long enough while another
 * tenant waits (see SlotBound): what ran (`ran` rows) is written already; `release` gives back the claim of
 * what did not run (no attempt is counted against it), `data` narrows the entry to it, and the
 * entry goes back to waiting at the priority its rest ranks at once `ran` rows ran (see
 * yieldedPriority). A worker that dies in between leaves the entry stalled, and its next delivery
 * finds only what is still to run.
 */
export async function yieldRest(
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
  ran: number,
  data: Partial<DispatchPayload>,
  release: Release,
): Promise<never> {
  await release();
  if (Object.keys(data).length > 0) await entry.updateData({ ...entry.data, ...data });
  await entry.moveToWait(run.token);
  // Added again one level lower, behind that level's entries (BullMQ puts one moved back in front of its level).
  await entry
    .changePriority({ priority: yieldedPriority(entry.priority, ran, entry.data.weight ?? 1) })
    .catch(() => {});
  throw new HandedBackError();
}

/** Where an entry's run is sliced (see SlotBound), but for its tenant, which its claim tells. */
export function sliceSite(entry: QueueEntry<DispatchPayload>) {
  return {
    model: modelOf(entry),
    version: entry.data.version,
    priority: entry.priority,
    weight: entry.data.weight ?? 1,
  };
}

/** A slice site's turn in the engine's batcher: its tenant's, by its weight. */
export const shareOf = (site: SliceSite): Share => ({ key: site.tenantId, weight: site.weight });

/** Gives back what a run claimed (see handBack). */
export type Release = () => Promise<void>;

/** Gives nothing back: for a run that claimed nothing yet. */
export const nothingClaimed: Release = async () => {};

/**
 * Whether the last worker that ran this entry died with it: BullMQ found the entry stalled (its
 * lock lapsed), or the reconciler re-added an entry whose jobs were running. Not an attempt that
 * threw (a database error), which BullMQ retries as it is.
 */
export function afterWorkerDeath(entry: QueueEntry<DispatchPayload>): boolean {
  return entry.stalledCounter > 0 || entry.data.resumed === true;
}

export const modelOf = (entry: QueueEntry<DispatchPayload>): string => parseInferQueueName(entry.queueName).model;

export const isRetriable = (outcome: ItemOutcome): boolean => !outcome.ok && outcome.retriable === true;

/** The result as JSON text, or the failure that replaces a result over the size limit. */
export function serialised(
  outcome: Extract<ItemOutcome, { ok: true }>,
  limits: ProcessorLimits,
): { resultJson: string } | { code: string; message: string } {
  const resultJson = JSON.stringify(outcome.result);
  const bytes = Buffer.byteLength(resultJson);
  if (bytes <= limits.maxResultBytes) return { resultJson };
  return {
    code: "result_too_large",
    message: `the result is ${bytes} bytes, over the limit of ${limits.maxResultBytes}; ask for fewer rows or outputs`,
  };
}

/** A failure that was retriable but is now final says after how many attempts. */
export function finalMessage(outcome: Extract<ItemOutcome, { ok: false }>, attempts: number): string {
  return outcome.retriable ? `${outcome.message} (gave up after ${attempts} attempts)` : outcome.message;
}

/** A job or item claimed more often than allowed: each of its runs ended without a result (the worker running it died). */
export function exhaustedError(runs: number): JobError {
  return {
    code: "retries_exhausted",
    message: `gave up after ${runs} attempts: each ended without a result (the worker running it died or lost it)`,
  };
}

export function giveUp(entry: QueueEntry<DispatchPayload>, err: unknown): { code: string; message: string } {
  return {
    code: "retries_exhausted",
    message: `gave up after ${entry.attemptsMade + 1} attempts: ${(err as Error).message}`,
  };
}
