// The runs of a batch chunk's entry: every item at once through the batcher on its first attempt,
// one at a time on later ones, its outcomes written in one transaction per run.

import type { Job as QueueEntry } from "bullmq";
import type { ChunkItemOutcome, ClaimedChunk } from "@inferline/db";
import type { InferenceItem, ItemOutcome } from "@inferline/inference";
import type { DispatchPayload } from "@inferline/queue";
import type { CacheableResult } from "./cache-writer.ts";
import { ATTR, epochNow } from "@inferline/telemetry";
import { EntryTrace, type TracedSubject } from "./entry-trace.ts";
import { runInSlices } from "./slot-bound.ts";
import {
  type ProcessorLimits,
  type ProcessorDeps,
  HandedBackError,
  type Delivery,
  ChunkRetryError,
  handBack,
  orHandBack,
  yieldRest,
  sliceSite,
  shareOf,
  type Release,
  nothingClaimed,
  afterWorkerDeath,
  isRetriable,
  serialised,
  finalMessage,
  exhaustedError,
  giveUp,
} from "./entry-run.ts";

/** A claimed chunk as its spans name it (its items' count is the batch size). */
export function chunkSubject(chunk: ClaimedChunk): TracedSubject {
  const attributes = {
    [ATTR.model]: chunk.model,
    [ATTR.version]: chunk.version,
    [ATTR.batchId]: chunk.batchId,
    [ATTR.chunkId]: chunk.id,
    [ATTR.attempt]: chunk.attempts,
  };
  return { key: chunk.id, traceParent: chunk.traceParent, attributes };
}

export async function processChunk(
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
export interface ChunkRun {
  entry: QueueEntry<DispatchPayload>;
  run: Delivery;
  release: Release;
}

/** A chunk's first attempt: every item at once through the batcher, written in one transaction. */
export async function runChunkTogether(
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
export async function runChunkAlone(
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

export async function writeChunk(
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
export function cacheableItems(
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

export function itemOf(chunk: ClaimedChunk, inputs: NonNullable<ClaimedChunk["items"][number]>): InferenceItem {
  return { inputs, outputs: chunk.requestedOutputs };
}

export function toChunkOutcome(outcome: ItemOutcome, attempts: number, limits: ProcessorLimits): ChunkItemOutcome {
  if (!outcome.ok) return { status: "failed", error: { code: outcome.code, message: finalMessage(outcome, attempts) } };
  const result = serialised(outcome, limits);
  return "resultJson" in result
    ? { status: "succeeded", resultJson: result.resultJson }
    : { status: "failed", error: result };
}
