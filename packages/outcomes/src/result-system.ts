import type {
  AnsweredJob,
  BatchDraft,
  ChunkItemOutcome,
  CommittedDraft,
  FinishedChunk,
  FinishedJob,
  FlightLeader,
  FollowResult,
  JobOutcome,
  NewJob,
  RecordedEvent,
} from "@inferline/db";
import { flightsEnded, jobsEnded } from "./decisions.ts";
import type { EventSystem } from "./event-system.ts";
import { NOTHING_RECORDED, type JobsRecorded, type OutcomeHooks, type OutcomeResources } from "./resources.ts";
import { ResultWriter, type Written } from "./result-writer.ts";

/**
 * Results: a run's outcomes (succeeded or failed) of jobs and of batch chunks' items, and the
 * rows that are terminal from the start (jobs answered from the result cache, followers answered
 * by their leader's result, batches whose items were all answered).
 */
export class ResultSystem {
  private readonly results: ResultWriter<JobsRecorded>;

  constructor(
    private readonly r: Pick<OutcomeResources, "db" | "jobs" | "chunks">,
    private readonly events: EventSystem,
    private readonly hooks: Pick<OutcomeHooks, "onFinished"> = {},
  ) {
    this.results = new ResultWriter(
      (outcomes, doneEntries, standalone) => this.writeJobs(outcomes, doneEntries, standalone),
      (written) => this.afterJobs(written),
    );
  }

  /** See OutcomeSystem.finishJobs. */
  finishJobs(
    outcomes: JobOutcome[],
    dispatchId?: string,
    options: { standalone?: boolean } = {},
  ): Promise<FinishedJob[]> {
    return this.results.write(outcomes, dispatchId, options.standalone ?? false);
  }

  /** See OutcomeSystem.finishUnclaimed. */
  async finishUnclaimed(outcome: JobOutcome, dispatchId: string, startedAt: Date): Promise<FinishedJob[]> {
    const finished = await this.r.jobs.finishUnclaimed(outcome, dispatchId, startedAt);
    if (finished.length > 0) await this.afterJobs({ finished, recorded: NOTHING_RECORDED });
    return finished;
  }

  /** See OutcomeSystem.insertAnswered. */
  async insertAnswered(jobs: AnsweredJob[]): Promise<void> {
    if (jobs.length === 0) return;
    if (!jobs.some((j) => j.webhook)) return void (await this.r.jobs.insertAnswered(jobs));
    const events = await this.r.db.transaction(async (client) =>
      this.events.jobEvents(await this.r.jobs.insertAnswered(jobs, client), client),
    );
    await this.events.afterCommit({ channels: [], events });
  }

  /** See OutcomeSystem.insertFollowers. */
  async insertFollowers(leader: FlightLeader, jobs: NewJob[]): Promise<FollowResult> {
    if (!jobs.some((j) => j.webhook)) return this.r.jobs.insertFollowers(leader, jobs);
    const { result, events } = await this.r.db.transaction(async (client) => {
      const result = await this.r.jobs.insertFollowers(leader, jobs, client);
      return { result, events: await this.events.jobEvents(result.inserted, client) };
    });
    await this.events.afterCommit({ channels: [], events });
    return result;
  }

  /** See OutcomeSystem.finishChunk. */
  async finishChunk(chunkId: string, outcomes: Array<ChunkItemOutcome | undefined>): Promise<FinishedChunk | null> {
    const { finished, events } = await this.r.db.transaction(async (client) => {
      const finished = await this.r.chunks.finish(chunkId, outcomes, client);
      return { finished, events: await this.events.batchCompleted(finished?.settlement ?? null, client) };
    });
    // Long-polls on the batch and on its items listen on the batch id: one message per chunk.
    await this.events.afterCommit({ channels: finished && finished.finished > 0 ? [finished.batchId] : [], events });
    return finished;
  }

  /** See OutcomeSystem.commitBatch. */
  async commitBatch(
    draft: BatchDraft,
    total: number,
    requestHash: string | null,
  ): Promise<CommittedDraft<RecordedEvent>> {
    const batchId = draft.batch.id;
    const committed = await draft.commit(total, requestHash, (client) =>
      this.events.batchCompletedById(batchId, client),
    );
    if (committed.completed) await this.events.afterCommit({ channels: [batchId], events: committed.recorded });
    return committed;
  }

  /**
   * The ResultWriter's persist: one group's results, done queue entries and events, in one
   * transaction; the followers of single flights these results end finish in it too (see
   * JobStore.finishFollowers), with their events, and are woken with the rest, or are released
   * onto queue entries of their own when the leader's failure was not its input's (see
   * flightsEnded). A standalone group has neither, so its statement runs alone: one round trip
   * instead of four (begin, finish, followers, commit). Should its results span several
   * statements, each commits on its own, which loses nothing: the entry's row goes with the last,
   * so a crash between them leaves it for the reconciler, whose re-run skips the jobs already finished.
   */
  private async writeJobs(
    outcomes: JobOutcome[],
    doneEntries: string[],
    standalone: boolean,
  ): Promise<Written<JobsRecorded>> {
    if (standalone)
      return { finished: await this.r.jobs.finishStandalone(outcomes, doneEntries), recorded: NOTHING_RECORDED };
    return this.r.db.transaction(async (client) => {
      const finished = await this.r.jobs.finish(outcomes, doneEntries, client);
      const { shared, rerun } = flightsEnded(finished, outcomes);
      const all = shared.length > 0 ? [...finished, ...(await this.r.jobs.finishFollowers(shared, client))] : finished;
      const released = rerun.length > 0 ? await this.r.jobs.releaseFollowers(rerun, undefined, client) : [];
      return { finished: all, recorded: { events: await this.events.jobEvents(all, client), released } };
    });
  }

  /** The ResultWriter's after: runs once per committed group. */
  private async afterJobs({ finished, recorded }: Written<JobsRecorded>): Promise<void> {
    const views = new Map<string, string>();
    for (const f of finished) if (f.viewJson) views.set(f.id, f.viewJson);
    await this.events.afterCommit({
      channels: finished.map((f) => f.id),
      views,
      events: recorded.events,
      released: recorded.released,
      ended: jobsEnded(finished),
    });
    await this.hooks.onFinished?.(finished);
  }
}
