import { WaitingError, type Job as QueueEntry } from "bullmq";
import type {
  BatchChunkStore,
  ChunkItemOutcome,
  ClaimedChunk,
  ClaimedJob,
  FinishedJob,
  IsolatedJob,
  JobOutcome,
  JobStore,
} from "@inferline/db";
import { RetriableError, type JobError } from "@inferline/contracts";
import { backoffDelay, hops, type BackoffSchedule } from "@inferline/runtime";
import type { InferenceEngine, InferenceItem, ItemOutcome, Share } from "@inferline/inference";
import { JOB_RETRY_JITTER, parseInferQueueName, type DispatchGroup, type DispatchPayload } from "@inferline/queue";
import type { OutcomeSystem } from "@inferline/outcomes";
import type { WorkerMetrics } from "./metrics.ts";
import type { ExclusiveGate } from "./exclusive-gate.ts";
import type { CacheableResult, CacheWriter } from "./cache-writer.ts";
import type { ResultCache } from "@inferline/cache";
import { ATTR, epochNow, tracing } from "@inferline/telemetry";
import type { RunTimes } from "./run-times.ts";
import { EntryTrace, type TracedSubject } from "./entry-trace.ts";
import type { TenantCaps } from "./tenant-caps.ts";
import { runInSlices, yieldedPriority, type SliceSite, type SlotBound } from "./slot-bound.ts";

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
interface Delivery {
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

/**
 * Hands the entry back at shutdown: gives back what its run claimed (`release`: no attempt is
 * counted against the work, which failed nothing) and puts it back on its queue, where another
 * worker takes it as a first delivery. Best effort: a claim that cannot be given back stays
 * counted, and an entry that cannot be moved is taken once its lock lapses.
 */
async function handBack(entry: QueueEntry<DispatchPayload>, run: Delivery, release: Release): Promise<never> {
  await release().catch(() => {});
  await entry.moveToWait(run.token);
  throw new HandedBackError();
}

/**
 * `work`'s value, unless the worker's shutdown timeout passes first: then the entry is handed
 * back (see handBack) and `work` goes on unheeded (closing the engine ends it).
 */
async function orHandBack<T>(
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
async function yieldRest(
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
function sliceSite(entry: QueueEntry<DispatchPayload>) {
  return {
    model: modelOf(entry),
    version: entry.data.version,
    priority: entry.priority,
    weight: entry.data.weight ?? 1,
  };
}

/** A slice site's turn in the engine's batcher: its tenant's, by its weight. */
const shareOf = (site: SliceSite): Share => ({ key: site.tenantId, weight: site.weight });

/** Gives back what a run claimed (see handBack). */
type Release = () => Promise<void>;

/** Gives nothing back: for a run that claimed nothing yet. */
const nothingClaimed: Release = async () => {};

/**
 * Whether the last worker that ran this entry died with it: BullMQ found the entry stalled (its
 * lock lapsed), or the reconciler re-added an entry whose jobs were running. Not an attempt that
 * threw (a database error), which BullMQ retries as it is.
 */
function afterWorkerDeath(entry: QueueEntry<DispatchPayload>): boolean {
  return entry.stalledCounter > 0 || entry.data.resumed === true;
}

async function processJobs(
  deps: ProcessorDeps,
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
): Promise<{ jobs: number }> {
  if (mayRunUnclaimed(deps, entry)) return deps.gate.runShared(() => runCarried(deps, entry, run));
  if (!afterWorkerDeath(entry)) return deps.gate.runShared(() => runJobs(deps, entry, run));
  if (entry.data.jobIds.length === 1) return deps.gate.runExclusive(() => runJobs(deps, entry, run));
  // Any of these may have killed the worker: none runs here; each gets an entry of its own, which
  // then runs alone (see ExclusiveGate), so the one that kills workers dies by itself.
  const moved = await deps.store.isolate(entry.id!, entry.data.jobIds, { removeEntry: true });
  await enqueueIsolated(deps, moved, { delayMs: 0, resumed: true });
  return { jobs: 0 };
}

/**
 * A lone small job whose entry carries its inputs (see CarriedJob), on the entry's first delivery,
 * of a model proved fast here (see RunTimes), with tracing off (its spans hang off the claim).
 */
function mayRunUnclaimed(deps: ProcessorDeps, entry: QueueEntry<DispatchPayload>): boolean {
  return (
    entry.data.carried !== undefined &&
    entry.data.jobIds.length === 1 &&
    entry.attemptsMade === 0 &&
    !afterWorkerDeath(entry) &&
    !tracing.enabled &&
    deps.runTimes?.isFast(modelOf(entry)) === true
  );
}

/**
 * Runs a lone job from the inputs its entry carries, then writes its outcome only if it is still
 * queued (JobStore.finishUnclaimed), counting the attempt there: the claim's write is saved. A
 * job no longer queued when its entry arrives (canceled, expired or claimed meanwhile) is not run
 * here, nor is anything else that happened meanwhile; those and any retriable failure take the
 * claim path, which decides what is left to do. A worker that dies here leaves the entry stalled,
 * and its next delivery claims (so that run and every later one counts).
 */
async function runCarried(
  deps: ProcessorDeps,
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
): Promise<{ jobs: number }> {
  const carried = entry.data.carried!;
  const model = modelOf(entry);
  const job: ClaimedJob = {
    id: entry.data.jobIds[0]!,
    model,
    version: entry.data.version,
    attempts: 1,
    standalone: true,
    ...carried,
  };
  // A cancel may commit while the entry waits, and its entry may not be removed in time (a worker
  // took it first, or Redis refused): the claim path never runs a canceled job.
  if (!(await deps.store.isQueued(job.id))) return runJobs(deps, entry, run);
  if (hops.enabled) hops.mark(job.id, "worker.claimed");
  const startedAt = new Date();
  const outcome = await orHandBack(timedInfer(deps, job, false, entry.data.weight ?? 1), entry, run, nothingClaimed);
  hops.mark(job.id, "worker.inferred");
  deps.metrics.unclaimedRuns.inc({ model });
  if (isRetriable(outcome)) return runJobs(deps, entry, run);
  const written = toJobOutcome(job, outcome, deps.limits);
  const finished = await deps.outcomes.finishUnclaimed(written, entry.id!, startedAt);
  if (finished.length === 0) return runJobs(deps, entry, run);
  if (hops.enabled) hops.mark(job.id, "worker.written");
  await cacheJobResults(deps, [job], [written], finished);
  return { jobs: 1 };
}

const modelOf = (entry: QueueEntry<DispatchPayload>): string => parseInferQueueName(entry.queueName).model;

/** A job's inference, its duration noted in RunTimes. `alone`: in a batch of its own. */
async function timedInfer(deps: ProcessorDeps, job: ClaimedJob, alone: boolean, weight: number): Promise<ItemOutcome> {
  const started = performance.now();
  const item = { inputs: job.inputs, outputs: job.requestedOutputs };
  const outcome = await deps.engine.infer(job.model, job.version, item, {
    alone,
    share: { key: job.tenantId, weight },
  });
  deps.runTimes?.record(job.model, performance.now() - started);
  return outcome;
}

/** finishJobs' options for the outcomes of `claimed`: standalone when every one is. */
const writeOptions = (claimed: ClaimedJob[]) => ({ standalone: claimed.every((j) => j.standalone) });

async function runJobs(
  deps: ProcessorDeps,
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
): Promise<{ jobs: number }> {
  // Held at the gate until the shutdown timeout passed: nothing claimed, nothing to give back.
  if (run.signal?.aborted) return handBack(entry, run, nothingClaimed);
  let claimed: ClaimedJob[] = [];
  const trace = EntryTrace.begin(entry.queueName);
  try {
    claimed = await deps.outcomes.claimJobs(entry.data.jobIds, entry.id);
    const claimedIds = claimed.map((j) => j.id);
    const release = () => deps.store.releaseClaims(claimedIds, entry.id!);
    trace?.claimed(claimed.map(jobSubject));
    if (hops.enabled) hops.markAll(entry.data.jobIds, "worker.claimed");
    const outcomes: JobOutcome[] = [];
    const again: ClaimedJob[] = [];
    const site = { ...sliceSite(entry), tenantId: claimed[0]?.tenantId ?? "" };
    const inferring = runInSlices(deps.slots, site, claimed, async (job) => {
      if (job.attempts > deps.limits.maxAttempts) return void outcomes.push(exhausted(job.id, job.attempts - 1));
      // A job on its second run or later may be what sank its first: it runs in a batch of its own.
      const span = trace?.inference(job.id);
      const outcome = await timedInfer(deps, job, job.attempts > 1, site.weight);
      EntryTrace.inferred(span, outcome);
      hops.mark(job.id, "worker.inferred");
      if (isRetriable(outcome) && !run.lastAttempt && job.attempts < deps.limits.maxAttempts)
        return void again.push(job);
      outcomes.push(toJobOutcome(job, outcome, deps.limits));
    });
    const rest = await orHandBack(inferring, entry, run, release);
    if (again.length > 0) {
      // A run that timed out or crashed its thread: each job tries again later on an entry of its own.
      const moved = await deps.store.isolate(
        entry.id!,
        again.map((j) => j.id),
        { removeEntry: false },
      );
      await enqueueIsolated(deps, moved, {
        delayMs: backoffDelay(jobRetryBackoff(deps.limits.backoffMs), again[0]!.attempts - 1),
        resumed: false,
      });
    }
    const writing = trace ? epochNow() : 0;
    const finished = await deps.outcomes.finishJobs(outcomes, entry.id, writeOptions(claimed));
    trace?.written(
      outcomes.map((o) => o.id),
      writing,
    );
    if (hops.enabled) hops.markAll(entry.data.jobIds, "worker.written");
    await cacheJobResults(deps, claimed, outcomes, finished);
    trace?.end();
    const restIds = rest.map((j) => j.id);
    if (restIds.length > 0)
      await yieldRest(entry, run, claimed.length - restIds.length, { jobIds: restIds }, () =>
        deps.store.releaseClaims(restIds, entry.id!),
      );
    return { jobs: finished.length };
  } catch (err) {
    trace?.end(err);
    // Past the shutdown timeout, what fails is the closing worker, not the jobs: none is failed.
    if (err instanceof HandedBackError || run.signal?.aborted) throw err;
    if (run.lastAttempt && claimed.length > 0) {
      const { code, message } = giveUp(entry, err);
      const failed: JobOutcome[] = claimed.map((j) => ({
        id: j.id,
        status: "failed",
        errorCode: code,
        errorMessage: message,
      }));
      await cacheJobResults(
        deps,
        claimed,
        failed,
        await deps.outcomes.finishJobs(failed, entry.id, writeOptions(claimed)),
      );
    }
    throw err;
  }
}

/** A claimed job as its spans name it: ids and its attempt, never its inputs. */
function jobSubject(job: ClaimedJob): TracedSubject {
  return {
    key: job.id,
    traceParent: job.traceParent,
    attributes: {
      [ATTR.model]: job.model,
      [ATTR.version]: job.version,
      [ATTR.jobId]: job.id,
      [ATTR.attempt]: job.attempts,
    },
  };
}

/** A claimed chunk as its spans name it (its items' count is the batch size). */
function chunkSubject(chunk: ClaimedChunk): TracedSubject {
  const attributes = {
    [ATTR.model]: chunk.model,
    [ATTR.version]: chunk.version,
    [ATTR.batchId]: chunk.batchId,
    [ATTR.chunkId]: chunk.id,
    [ATTR.attempt]: chunk.attempts,
  };
  return { key: chunk.id, traceParent: chunk.traceParent, attributes };
}

/**
 * After a committed write of jobs' outcomes: the succeeded results of jobs with a digest go to the
 * result cache (failures never do), then the flights of every finished job with one end. Jobs the
 * write did not finish (canceled meanwhile) store nothing. Never throws (the cache degrades).
 */
async function cacheJobResults(
  deps: ProcessorDeps,
  claimed: ClaimedJob[],
  outcomes: JobOutcome[],
  finished: FinishedJob[],
): Promise<void> {
  if (!deps.jobCache) return;
  const byId = new Map(claimed.map((j) => [j.id, j]));
  const done = new Set(finished.map((f) => f.id));
  const results = new Map<string, { job: ClaimedJob; list: CacheableResult[] }>();
  const flights: Array<{ digest: string; jobId: string }> = [];
  for (const o of outcomes) {
    const job = byId.get(o.id);
    if (!job?.cacheKey || !done.has(o.id)) continue;
    flights.push({ digest: job.cacheKey, jobId: job.id });
    if (o.status !== "succeeded") continue;
    const key = `${job.model}@${job.version}`;
    const group = results.get(key);
    if (group) group.list.push({ digest: job.cacheKey, resultJson: o.resultJson });
    else results.set(key, { job, list: [{ digest: job.cacheKey, resultJson: o.resultJson }] });
  }
  for (const { job, list } of results.values()) await deps.jobCache.results.store(job.model, job.version, list);
  await deps.jobCache.flights.land(flights);
}

/** Adds the queue entries of jobs moved onto entries of their own (their rows are written: if Redis refuses now, the reconciler adds them). */
async function enqueueIsolated(
  deps: ProcessorDeps,
  moved: IsolatedJob[],
  options: { delayMs: number; resumed: boolean },
): Promise<void> {
  const groups = moved.map((m) => ({
    dispatchId: m.dispatchId,
    model: m.model,
    version: m.version,
    priority: m.priority,
    jobIds: [m.jobId],
    ...options,
  }));
  await deps.enqueue(groups).catch(() => {});
}

async function processChunk(
  deps: ProcessorDeps,
  entry: QueueEntry<DispatchPayload>,
  run: Delivery,
): Promise<{ jobs: number }> {
  const chunkId = entry.id!;
  const claimed: { chunk: ClaimedChunk | null } = { chunk: null };
  const trace = EntryTrace.begin(entry.queueName);
  const release = () => deps.chunks.releaseClaim(chunkId);
  const runChunk = async (): Promise<number> => {
    if (run.signal?.aborted) return handBack(entry, run, nothingClaimed);
    trace?.claiming();
    const chunk = (claimed.chunk = await deps.outcomes.claimChunk(chunkId));
    // Finished, gone or overdue (a duplicate entry, a batch canceled meanwhile, a deadline passed): only its dispatch row may be left.
    if (!chunk) return (await deps.outcomes.finishChunk(chunkId, []))?.finished ?? 0;
    trace?.claimed([chunkSubject(chunk)]);
    const hand = { entry, run, release };
    return chunk.attempts > 1 ? runChunkAlone(deps, chunk, hand, trace) : runChunkTogether(deps, chunk, hand, trace);
  };
  try {
    const jobs = afterWorkerDeath(entry) ? await deps.gate.runExclusive(runChunk) : await deps.gate.runShared(runChunk);
    trace?.end();
    return { jobs };
  } catch (err) {
    trace?.end(err);
    const chunk = claimed.chunk;
    if (err instanceof HandedBackError || run.signal?.aborted) throw err;
    if (run.lastAttempt && chunk && !(err instanceof ChunkRetryError)) {
      const error = giveUp(entry, err);
      await deps.outcomes.finishChunk(
        chunkId,
        chunk.items.map((inputs) => (inputs ? { status: "failed", error } : undefined)),
      );
    }
    throw err;
  }
}

/** A chunk's run, with what it needs to hand its entry back at shutdown (see orHandBack). */
interface ChunkRun {
  entry: QueueEntry<DispatchPayload>;
  run: Delivery;
  release: Release;
}

/** A chunk's first attempt: every item at once through the batcher, written in one transaction. */
async function runChunkTogether(
  deps: ProcessorDeps,
  chunk: ClaimedChunk,
  hand: ChunkRun,
  trace?: EntryTrace,
): Promise<number> {
  let retryLater = 0;
  const span = trace?.inference(chunk.id, { [ATTR.batchSize]: chunk.items.filter(Boolean).length });
  const outcomes = new Array<ChunkItemOutcome | undefined>(chunk.items.length);
  const queued = chunk.items.flatMap((inputs, i) => (inputs ? [{ i, inputs }] : []));
  const site = { ...sliceSite(hand.entry), tenantId: chunk.tenantId };
  // Items to retry are retried by the whole chunk's next attempt: a run with any stops no earlier than its end.
  const inferring = runInSlices(
    deps.slots,
    site,
    queued,
    async ({ i, inputs }) => {
      const outcome = await deps.engine.infer(chunk.model, chunk.version, itemOf(chunk, inputs), {
        share: shareOf(site),
      });
      if (isRetriable(outcome) && !hand.run.lastAttempt && chunk.attempts < deps.limits.maxAttempts)
        return void retryLater++;
      outcomes[i] = toChunkOutcome(outcome, chunk.attempts, deps.limits);
    },
    () => retryLater === 0,
  );
  const rest = await orHandBack(inferring, hand.entry, hand.run, hand.release);
  span?.end();
  const finished = await writeChunk(deps, chunk, outcomes, trace);
  if (rest.length > 0)
    await yieldRest(hand.entry, hand.run, queued.length - rest.length, {}, () =>
      deps.chunks.releaseClaim(chunk.id, { started: true }),
    );
  if (retryLater > 0)
    throw new ChunkRetryError(
      `${retryLater} items of chunk ${chunk.id} timed out or crashed their thread; retrying them one at a time`,
    );
  return finished;
}

/**
 * A chunk's later attempts: the previous one died or timed out, so items run one at a time and
 * each outcome is committed at once. If a worker dies now, the first item still queued is the
 * one it was running; once the chunk is past maxAttempts, that item fails (retries_exhausted)
 * and the others go on.
 */
async function runChunkAlone(
  deps: ProcessorDeps,
  chunk: ClaimedChunk,
  hand: ChunkRun,
  trace?: EntryTrace,
): Promise<number> {
  const exhaustedNow = chunk.attempts > deps.limits.maxAttempts;
  let blamed = false;
  let retryLater = 0;
  let finished = 0;
  for (let i = 0; i < chunk.items.length; i++) {
    const inputs = chunk.items[i];
    if (!inputs) continue;
    let outcome: ChunkItemOutcome;
    if (exhaustedNow && !blamed) {
      blamed = true;
      outcome = { status: "failed", error: exhaustedError(chunk.attempts - 1) };
    } else {
      const span = trace?.inference(chunk.id, { [ATTR.batchSize]: 1 });
      const inferring = deps.engine.infer(chunk.model, chunk.version, itemOf(chunk, inputs), {
        alone: true,
        share: { key: chunk.tenantId, weight: hand.entry.data.weight ?? 1 },
      });
      const result = await orHandBack(inferring, hand.entry, hand.run, hand.release);
      EntryTrace.inferred(span, result);
      if (isRetriable(result) && !hand.run.lastAttempt && chunk.attempts < deps.limits.maxAttempts) {
        retryLater++;
        continue;
      }
      outcome = toChunkOutcome(result, chunk.attempts, deps.limits);
    }
    const sparse = new Array<ChunkItemOutcome | undefined>(chunk.items.length);
    sparse[i] = outcome;
    finished += await writeChunk(deps, chunk, sparse, trace);
  }
  if (retryLater > 0)
    throw new ChunkRetryError(`${retryLater} items of chunk ${chunk.id} timed out or crashed their thread again`);
  return finished;
}

async function writeChunk(
  deps: ProcessorDeps,
  chunk: ClaimedChunk,
  outcomes: Array<ChunkItemOutcome | undefined>,
  trace?: EntryTrace,
): Promise<number> {
  const writing = trace ? epochNow() : 0;
  const finished = await deps.outcomes.finishChunk(chunk.id, outcomes);
  trace?.written([chunk.id], writing);
  if (finished) {
    // Jobs are counted by the OutcomeSystem's `ended` hook; a chunk's run items here, where its model is known.
    deps.metrics.itemsFinished.inc({ model: chunk.model, status: "succeeded" }, finished.succeeded);
    deps.metrics.itemsFinished.inc({ model: chunk.model, status: "failed" }, finished.failed);
    // After the commit, and only what it wrote as succeeded (failures are never cached).
    if (deps.chunkCache && chunk.cacheKeys.length > 0)
      await deps.chunkCache.store(chunk.model, chunk.version, cacheableItems(chunk, outcomes, finished.succeededItems));
  }
  return finished?.finished ?? 0;
}

/** The items a chunk write made succeeded, each with the digest the API stored for it. */
function cacheableItems(
  chunk: ClaimedChunk,
  outcomes: Array<ChunkItemOutcome | undefined>,
  succeeded: number[],
): CacheableResult[] {
  return succeeded.flatMap((i) => {
    const outcome = outcomes[i];
    const digest = chunk.cacheKeys[i];
    return outcome?.status === "succeeded" && digest ? [{ digest, resultJson: outcome.resultJson }] : [];
  });
}

function itemOf(chunk: ClaimedChunk, inputs: NonNullable<ClaimedChunk["items"][number]>): InferenceItem {
  return { inputs, outputs: chunk.requestedOutputs };
}

const isRetriable = (outcome: ItemOutcome): boolean => !outcome.ok && outcome.retriable === true;

/** The result as JSON text, or the failure that replaces a result over the size limit. */
function serialised(
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
function finalMessage(outcome: Extract<ItemOutcome, { ok: false }>, attempts: number): string {
  return outcome.retriable ? `${outcome.message} (gave up after ${attempts} attempts)` : outcome.message;
}

function toJobOutcome(job: ClaimedJob, outcome: ItemOutcome, limits: ProcessorLimits): JobOutcome {
  if (!outcome.ok)
    return { id: job.id, status: "failed", errorCode: outcome.code, errorMessage: finalMessage(outcome, job.attempts) };
  const result = serialised(outcome, limits);
  return "resultJson" in result
    ? { id: job.id, status: "succeeded", resultJson: result.resultJson }
    : { id: job.id, status: "failed", errorCode: result.code, errorMessage: result.message };
}

function toChunkOutcome(outcome: ItemOutcome, attempts: number, limits: ProcessorLimits): ChunkItemOutcome {
  if (!outcome.ok) return { status: "failed", error: { code: outcome.code, message: finalMessage(outcome, attempts) } };
  const result = serialised(outcome, limits);
  return "resultJson" in result
    ? { status: "succeeded", resultJson: result.resultJson }
    : { status: "failed", error: result };
}

/** A job or item claimed more often than allowed: each of its runs ended without a result (the worker running it died). */
function exhaustedError(runs: number): JobError {
  return {
    code: "retries_exhausted",
    message: `gave up after ${runs} attempts: each ended without a result (the worker running it died or lost it)`,
  };
}

function exhausted(id: string, runs: number): JobOutcome {
  const { code, message } = exhaustedError(runs);
  return { id, status: "failed", errorCode: code, errorMessage: message };
}

function giveUp(entry: QueueEntry<DispatchPayload>, err: unknown): { code: string; message: string } {
  return {
    code: "retries_exhausted",
    message: `gave up after ${entry.attemptsMade + 1} attempts: ${(err as Error).message}`,
  };
}

/**
 * Retries of items the worker re-enqueues itself: the schedule BullMQ gives a queue entry's retries
 * (the dispatcher's exponential backoff), doubling from RETRY_BACKOFF_MS, uncapped, each delay
 * between half and all of its ceiling.
 */
export const jobRetryBackoff = (baseMs: number): BackoffSchedule => ({
  baseMs,
  maxMs: Number.POSITIVE_INFINITY,
  jitter: JOB_RETRY_JITTER,
});
