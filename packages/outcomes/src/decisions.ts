import { isInputFault } from "@inferline/contracts";
import type { EmptiedEntry, ExpiredChunks, FinishedJob, JobOutcome } from "@inferline/db";
import type { DispatchGroup } from "@inferline/queue";
import type { Committed, EndedWork } from "./resources.ts";

/*
 * The outcome path's decisions, apart from its I/O: which followers of a single flight share
 * their leader's outcome and which run anew, what a commit ended (for the `ended` hook), and
 * what is left to do after a commit. Pure functions over the rows the stores return.
 */

/**
 * The single flights that a write of results ended, by what their followers do: share the
 * leader's outcome (it succeeded, or failed for its input: see isInputFault), or run anew (it
 * failed for another reason, which the followers, never run, have no part in).
 */
export function flightsEnded(finished: FinishedJob[], outcomes: JobOutcome[]): { shared: string[]; rerun: string[] } {
  const shared: string[] = [];
  const rerun: string[] = [];
  const failures = new Map<string, string>();
  for (const o of outcomes) if (o.status === "failed") failures.set(o.id, o.errorCode);
  for (const f of finished) {
    if (!f.cacheKey) continue;
    if (f.status === "succeeded") shared.push(f.id);
    else if (f.status === "failed") (isInputFault(failures.get(f.id) ?? "") ? shared : rerun).push(f.id);
  }
  return { shared, rerun };
}

/** Leaders of single flights that ended without a run's outcome (canceled, expired): their followers must run on entries of their own. */
export function leadersToRelease(ended: FinishedJob[]): string[] {
  return ended.filter((f) => f.cacheKey && (f.status === "canceled" || f.status === "expired")).map((f) => f.id);
}

/** Jobs that one commit ended, counted by model and status. */
export function jobsEnded(jobs: FinishedJob[]): EndedWork[] {
  const counts = new Map<string, EndedWork>();
  for (const job of jobs) {
    const key = `${job.model}\u0000${job.status}`;
    const work = counts.get(key);
    if (work) work.count++;
    else counts.set(key, { kind: "job", model: job.model, status: job.status, count: 1 });
  }
  return [...counts.values()];
}

/** Batch items that one expiry ended, counted by model. */
export function itemsExpired(expired: Pick<ExpiredChunks, "byModel">): EndedWork[] {
  return expired.byModel.map((m): EndedWork => ({ kind: "item", model: m.model, status: "expired", count: m.items }));
}

/** What a commit leaves to do besides waking waiters and delivering events. */
export interface FollowUp {
  /** For the `ended` hook: only what ended something. */
  ended: EndedWork[];
  /** Queue entries emptied while still waiting: removed, so no worker takes them. */
  remove: EmptiedEntry[];
  /** Followers released onto queue entries of their own. */
  enqueue: DispatchGroup[];
}

export function followUp({
  ended = [],
  emptied = [],
  released = [],
}: Pick<Committed, "ended" | "emptied" | "released">): FollowUp {
  return {
    ended: ended.filter((e) => e.count > 0),
    remove: emptied.filter((e) => e.waiting),
    enqueue: released.map((r) => ({
      dispatchId: r.dispatchId,
      model: r.model,
      version: r.version,
      priority: r.priority,
      jobIds: r.jobIds,
      tenantId: r.tenantId,
    })),
  };
}
