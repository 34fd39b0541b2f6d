import { hops, type LevelLogger } from "@inferline/runtime";
import type { JobStatus } from "@inferline/contracts";
import {
  isRowFault,
  postgresFailure,
  type AnsweredJob,
  type FlightLeader,
  type InsertedFollower,
  type JobStore,
  type NewJob,
} from "@inferline/db";
import type { OutcomeSystem } from "@inferline/outcomes";
import type { CarriedJob, Dispatcher, DispatchGroup } from "@inferline/queue";
import type { TenantBacklog } from "./tenant-backlog.ts";

interface Waiting {
  job: NewJob;
  /** The tenant's fair-share weight (Tenant.weight). */
  weight: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A job answered from the result cache: stored succeeded, never enqueued. */
interface WaitingAnswer {
  job: AnsweredJob;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A job identical to one in flight: stored as its follower, answered from its result, or refused (see Followed). */
interface WaitingFollower {
  job: NewJob;
  leader: FlightLeader;
  resolve: (followed: Followed) => void;
  reject: (err: unknown) => void;
}

/** What became of a follower: inserted (waiting, or answered from the leader's result) or not, with the leader's status as seen under its lock. */
export interface Followed {
  leaderStatus: JobStatus | null;
  inserted?: InsertedFollower;
}

/** Where answered jobs and followers are stored, with their webhook events (the outcome path). */
export type CachedJobWriter = Pick<OutcomeSystem, "insertAnswered" | "insertFollowers">;

/**
 * Group commit for submits: jobs that arrive while a write is in flight are inserted with one
 * statement and enqueued with one addBulk, so concurrent clients share round trips. A lone
 * request waits for no timer. Each caller's promise resolves only once its job is in
 * PostgreSQL; if Redis then refuses the queue entry, the job stays queued in the database and
 * the workers' reconciler enqueues it, so an accepted job is never lost.
 *
 * Fair share: a queue entry carries one tenant's jobs; its BullMQ priority comes from its rank
 * (the tenant's queued work of that model and class ahead of it, see TenantBacklog) and the
 * tenant's weight, so tenants take turns on the model's workers (the queue package's
 * entryPriority).
 */
export class SubmitWriter {
  private waiting: Waiting[] = [];
  private answers: WaitingAnswer[] = [];
  private followers: WaitingFollower[] = [];
  private writing = false;

  constructor(
    private readonly store: JobStore,
    private readonly dispatcher: Dispatcher,
    private readonly backlog: Pick<TenantBacklog, "rank">,
    /** Where a refused enqueue is reported (throttled: a Redis outage refuses every group). */
    private readonly logger: LevelLogger,
    /** Stores the result cache's jobs (answered, single-flight followers); needed only when a model caches. */
    private readonly cached?: CachedJobWriter,
    /** The most jobs one entry of a tenant's work on a model carries, under its concurrency caps (see CapSizes); undefined: maxJobsPerEntry. */
    private readonly entrySize?: (tenantId: string, model: string) => number | undefined,
  ) {}

  /** Stores and enqueues the job with the others that arrive meanwhile; `weight` is its tenant's. */
  submit(job: NewJob, weight = 1): Promise<void> {
    hops.mark(job.id, "api.accepted");
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, weight, resolve, reject });
      this.wake();
    });
  }

  /** Stores a job answered from the result cache (succeeded, never enqueued), group-committed with the other submits that arrive meanwhile. */
  answer(job: AnsweredJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.answers.push({ job, resolve, reject });
      this.wake();
    });
  }

  /** Stores a job as a follower of `leader` (see JobStore.insertFollowers), group-committed with the other followers of that leader. */
  follow(leader: FlightLeader, job: NewJob): Promise<Followed> {
    return new Promise((resolve, reject) => {
      this.followers.push({ job, leader, resolve, reject });
      this.wake();
    });
  }

  private wake(): void {
    if (!this.writing) void this.drain();
  }

  /** Writes what waits, the three kinds side by side (each on statements of its own), until nothing does. Never rejects: each caller hears of its own job. */
  private async drain(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0 || this.answers.length > 0 || this.followers.length > 0) {
      const [runs, answers, followers] = [this.waiting, this.answers, this.followers];
      [this.waiting, this.answers, this.followers] = [[], [], []];
      await Promise.all([this.writeRuns(runs), this.writeAnswers(answers), this.writeFollowers(followers)]);
    }
    this.writing = false;
  }

  private async writeRuns(group: Waiting[]): Promise<void> {
    if (group.length === 0) return;
    let stored: Waiting[];
    try {
      const plan = this.plan(group);
      // Ranked while the insert runs (the reading leaves this write's entries out); never rejects.
      const ranking = this.ranked(plan);
      stored = await this.insert(group);
      const ids = new Set(stored.map((w) => w.job.id));
      if (hops.enabled) hops.markAll([...ids], "api.stored");
      const entries = (await ranking)
        .map((g) => ({ ...g, jobIds: g.jobIds.filter((id) => ids.has(id)) }))
        .filter((g) => g.jobIds.length > 0);
      // Stored with their dispatch rows, the jobs are accepted whether or not the queue takes
      // their entries now (the reconciler adds what it missed): their submits are answered while
      // the entries are added, not after. The next group still waits for this enqueue.
      for (const w of stored) w.resolve();
      if (hops.enabled) hops.markAll([...ids], "api.adding");
      await this.dispatcher
        .enqueue(entries)
        .catch((err: Error) =>
          this.logger.warn(
            { err: err.message, jobs: stored.length },
            "enqueue failed; the reconciler will enqueue these jobs",
          ),
        );
      if (hops.enabled) hops.markAll([...ids], "api.enqueued");
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }

  /**
   * One insert (with its events' transaction) for the group's answered jobs; after a row fault,
   * each on its own; after a lost answer, those that committed all the same.
   */
  private async writeAnswers(group: WaitingAnswer[]): Promise<void> {
    if (group.length === 0) return;
    const insert = async (list: WaitingAnswer[]) => {
      try {
        await this.cachedWriter().insertAnswered(list.map((w) => w.job));
      } catch (err) {
        if (!(await this.committedAnyway(list, err))) throw err;
      }
    };
    const stored = await this.storeGroup(group, insert);
    for (const w of stored) w.resolve();
  }

  /** One statement per leader (see JobStore.insertFollowers), the leaders side by side. */
  private async writeFollowers(group: WaitingFollower[]): Promise<void> {
    const byLeader = new Map<string, WaitingFollower[]>();
    for (const w of group) {
      const key = `${w.leader.id}\u0000${w.leader.tenantId}\u0000${w.leader.cacheKey}`;
      const list = byLeader.get(key);
      if (list) list.push(w);
      else byLeader.set(key, [w]);
    }
    await Promise.all(
      [...byLeader.values()].map(async (list) => {
        const results = new Map<string, Followed>();
        const stored = await this.storeGroup(list, async (part) => {
          const { leaderStatus, inserted } = await this.cachedWriter().insertFollowers(
            part[0]!.leader,
            part.map((w) => w.job),
          );
          const byId = new Map(inserted.map((f) => [f.id, f]));
          for (const w of part) results.set(w.job.id, { leaderStatus, inserted: byId.get(w.job.id) });
        });
        for (const w of stored) w.resolve(results.get(w.job.id)!);
      }),
    );
  }

  /**
   * Writes a group with `write`; after a row fault, each member on its own, so only the guilty
   * request fails (as insertOneByOne does for runs). Rejects the members that failed; returns the stored.
   */
  private async storeGroup<W extends { job: NewJob; reject: (err: unknown) => void }>(
    group: W[],
    write: (list: W[]) => Promise<unknown>,
  ): Promise<W[]> {
    try {
      await write(group);
      return group;
    } catch (err) {
      if (group.length === 1 || !isRowFault(err)) {
        for (const w of group) w.reject(err);
        return [];
      }
    }
    const stored: W[] = [];
    for (const w of group) {
      try {
        await write([w]);
        stored.push(w);
      } catch (err) {
        w.reject(err);
      }
    }
    return stored;
  }

  private cachedWriter(): CachedJobWriter {
    if (!this.cached) throw new Error("SubmitWriter: no writer for the result cache's jobs was given");
    return this.cached;
  }

  /**
   * One statement for the group; after a row fault, each job on its own (see insertOneByOne).
   * Returns the stored: those of a statement whose answer was lost but whose commit happened too.
   */
  private async insert(group: Waiting[]): Promise<Waiting[]> {
    try {
      await this.store.insertMany(group.map((w) => w.job));
      return group;
    } catch (err) {
      if (group.length > 1 && isRowFault(err)) return this.insertOneByOne(group);
      if (await this.committedAnyway(group, err)) return group;
      throw err;
    }
  }

  /**
   * Whether a write whose connection dropped before its answer came (a restart, a failover, a
   * killed backend: possibly after the commit) committed all the same: its jobs are then stored
   * and their submits are answered with them, not refused. Asked only then, and briefly: a server
   * that stopped answering (a timeout) would only make the refusal late. Unknown: false.
   */
  private async committedAnyway(group: Array<{ job: NewJob }>, err: unknown): Promise<boolean> {
    if (postgresFailure(err) !== "terminated") return false;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), COMMIT_CHECK_MS)));
    const asked = this.store.existing(group.map((w) => w.job.id)).catch(() => undefined);
    const found = await Promise.race([asked, late]).finally(() => clearTimeout(timer));
    return found !== undefined && group.every((w) => found.has(w.job.id));
  }

  /**
   * After a group insert failed on some row's data: each job on its own, so only the guilty
   * request fails (validation should have refused it; this is the safety net). Returns the stored.
   */
  private async insertOneByOne(group: Waiting[]): Promise<Waiting[]> {
    const stored: Waiting[] = [];
    for (const w of group) {
      try {
        await this.store.insertMany([w.job]);
        stored.push(w);
      } catch (err) {
        w.reject(err);
      }
    }
    return stored;
  }

  /**
   * Groups jobs by model, version, priority and tenant (an entry carries one tenant's jobs, for
   * fair share and quotas), and stamps each with its queue entry's id.
   */
  private plan(waiting: Array<Pick<Waiting, "job" | "weight">>): DispatchGroup[] {
    const byKey = new Map<string, Array<Pick<Waiting, "job" | "weight">>>();
    for (const w of waiting) {
      const { model, version, priority, tenantId } = w.job;
      const key = `${model}\u0000${version}\u0000${priority}\u0000${tenantId}`;
      const list = byKey.get(key);
      if (list) list.push(w);
      else byKey.set(key, [w]);
    }
    const groups: DispatchGroup[] = [];
    for (const list of byKey.values()) {
      const { model, version, priority, tenantId } = list[0]!.job;
      // The last submit's weight: a change reaches the API's auth cache key by key.
      const weight = list[list.length - 1]!.weight;
      for (const g of this.dispatcher.plan(
        model,
        version,
        priority,
        list.map((w) => w.job),
        Math.min(this.dispatcher.maxJobsPerEntry, this.entrySize?.(tenantId, model) ?? Infinity),
      )) {
        const lone = g.jobIds.length === 1 ? list.find((w) => w.job.id === g.jobIds[0])?.job : undefined;
        const carried = lone && carriedOf(lone);
        groups.push({ ...g, tenantId, weight, ...(carried ? { carried } : {}) });
      }
    }
    return groups;
  }

  /** The entries with their fair-share ranks. */
  private async ranked(groups: DispatchGroup[]): Promise<DispatchGroup[]> {
    const ranks = await this.backlog.rank(
      groups.map((g) => ({
        id: g.dispatchId,
        tenantId: g.tenantId!,
        model: g.model,
        priority: g.priority,
        jobs: g.jobIds.length,
      })),
    );
    return groups.map((g, i) => ({ ...g, rank: ranks[i] }));
  }
}

/** How long a submit whose connection dropped waits to learn whether its insert committed. */
const COMMIT_CHECK_MS = 500;

/** The most tensor elements a lone job's entry carries (see CarriedJob): a row of features, not images; about 400 bytes of JSON in Redis per waiting entry at most. */
const MAX_CARRIED_ELEMENTS = 32;

/** What a worker needs to run a lone job before claiming it, when the job allows it (see CarriedJob). */
function carriedOf(job: NewJob): CarriedJob | undefined {
  if (job.webhook || job.leadsFlight || job.queueDeadline || job.cancelAt) return undefined;
  let elements = 0;
  for (const tensor of job.inputs) {
    if (tensor.datatype === "BYTES") return undefined;
    elements += tensor.data.length;
  }
  if (elements > MAX_CARRIED_ELEMENTS) return undefined;
  return {
    tenantId: job.tenantId,
    inputs: job.inputs,
    requestedOutputs: job.requestedOutputs,
    cacheKey: job.cacheKey ?? null,
    traceParent: job.traceParent ?? null,
  };
}
