import type { AnsweredJob, FlightLeader, NewJob, Tenant } from "@inferline/db";
import type { JobWrites } from "./job-result-cache.ts";
import type { ModelAvailability } from "./model-availability.ts";
import type { QueueDepthGuard } from "./queue-depth-guard.ts";
import type { TenantQuotaGuard } from "./quota-guard.ts";
import type { Followed, SubmitWriter } from "./submit-writer.ts";

/** What a submit's writes check before a job is queued. */
export interface SubmitGuards {
  /** MAX_QUEUE_DEPTH, shared with BatchService so that batch items and jobs count against one depth. */
  depthGuard: QueueDepthGuard;
  /** Each tenant's maxQueued, shared with BatchService. */
  quotaGuard: TenantQuotaGuard;
  /** Refuses work for a model version no worker can serve (shared with BatchService); absent, every known model is accepted. */
  availability?: Pick<ModelAvailability, "assertServable" | "servableNow">;
}

/**
 * One submit's writes (JobWrites), for `tenant`'s `job`: its guards, then the writer's group
 * commit. A class rather than an object of closures: a submit then allocates one object, and
 * names no functions (tsx keeps function names, at a cost per closure).
 */
export class SubmitWrites implements JobWrites {
  constructor(
    private readonly writer: SubmitWriter,
    private readonly guards: SubmitGuards,
    private readonly tenant: Tenant,
    private readonly job: NewJob,
  ) {}

  /**
   * 503 model_unavailable when workers reported the version failed to load and none serves it; 503
   * queue_full when the model's queue is at MAX_QUEUE_DEPTH; 429 quota_exceeded when the tenant is
   * at its maxQueued (else the job counts against it). Decided without awaiting while the guards'
   * readings are fresh (nearly every submit): undefined then.
   */
  admit(): Promise<void> | undefined {
    const { availability, depthGuard, quotaGuard } = this.guards;
    const { model, version } = this.job;
    if (
      (availability?.servableNow(model, version) ?? true) &&
      depthGuard.roomNow(model) &&
      quotaGuard.admitNow(this.tenant)
    )
      return undefined;
    return this.awaitRoom();
  }

  /** Stores and enqueues the job, counting it into this process's cached depth (see QueueDepthGuard). */
  async run(job: NewJob): Promise<void> {
    await this.writer.submit(job, this.tenant.weight);
    this.guards.depthGuard.noteQueued(job.model);
  }

  answer(job: AnsweredJob): Promise<void> {
    return this.writer.answer(job);
  }

  follow(leader: FlightLeader, job: NewJob): Promise<Followed> {
    return this.writer.follow(leader, job);
  }

  private async awaitRoom(): Promise<void> {
    const { model, version } = this.job;
    await this.guards.availability?.assertServable(model, version);
    await this.guards.depthGuard.assertRoom(model);
    await this.guards.quotaGuard.admit(this.tenant);
  }
}
