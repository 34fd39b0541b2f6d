// The runs of an entry of jobs: claimed first (or, a lone small job of a fast model, run before its
// claim), in slices, each job's retriable failure moved onto an entry of its own; after a worker
// died mid-entry, every job isolated (see createProcessor).

import type { Job as QueueEntry } from "bullmq";
import type { ClaimedJob, FinishedJob, IsolatedJob, JobOutcome } from "@inferline/db";
import { backoffDelay, hops, type BackoffSchedule } from "@inferline/runtime";
import type { ItemOutcome } from "@inferline/inference";
import { JOB_RETRY_JITTER, type DispatchPayload } from "@inferline/queue";
import type { CacheableResult } from "./cache-writer.ts";
import { ATTR, epochNow, tracing } from "@inferline/telemetry";
import { EntryTrace, type TracedSubject } from "./entry-trace.ts";
import { runInSlices } from "./slot-bound.ts";
import {
  type ProcessorLimits,
  type ProcessorDeps,
  HandedBackError,
  type Delivery,
  handBack,
  orHandBack,
  yieldRest,
  sliceSite,
  nothingClaimed,
  afterWorkerDeath,
  modelOf,
  isRetriable,
  serialised,
  finalMessage,
  exhaustedError,
  giveUp,
} from "./entry-run.ts";

export async function processJobs(
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
export function mayRunUnclaimed(deps: ProcessorDeps, entry: QueueEntry<DispatchPayload>): boolean {
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
export async function runCarried(
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

/** A job's inference, its duration noted in RunTimes. `alone`: in a batch of its own. */
export async function timedInfer(
  deps: ProcessorDeps,
  job: ClaimedJob,
  alone: boolean,
  weight: number,
): Promise<ItemOutcome> {
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
export const writeOptions = (claimed: ClaimedJob[]) => ({ standalone: claimed.every((j) => j.standalone) });

export async function runJobs(
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
export function jobSubject(job: ClaimedJob): TracedSubject {
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

/**
 * After a committed write of jobs' outcomes: the succeeded results of jobs with a digest go to the
 * result cache (failures never do), then the flights of every finished job with one end. Jobs the
 * write did not finish (canceled meanwhile) store nothing. Never throws (the cache degrades).
 */
export async function cacheJobResults(
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
export async function enqueueIsolated(
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

export function toJobOutcome(job: ClaimedJob, outcome: ItemOutcome, limits: ProcessorLimits): JobOutcome {
  if (!outcome.ok)
    return { id: job.id, status: "failed", errorCode: outcome.code, errorMessage: finalMessage(outcome, job.attempts) };
  const result = serialised(outcome, limits);
  return "resultJson" in result
    ? { id: job.id, status: "succeeded", resultJson: result.resultJson }
    : { id: job.id, status: "failed", errorCode: result.code, errorMessage: result.message };
}

export function exhausted(id: string, runs: number): JobOutcome {
  const { code, message } = exhaustedError(runs);
  return { id, status: "failed", errorCode: code, errorMessage: message };
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
