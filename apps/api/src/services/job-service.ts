import crypto from "node:crypto";
import {
  ConflictError,
  isTerminal,
  isUuid,
  NotFoundError,
  ServiceUnavailableError,
  validateInputs,
  validateOutputNames,
  ValidationError,
  type JobListQuery,
  type JobSubmission,
  type JobView,
  type ModelRepository,
} from "@inferline/contracts";
import { toJobView, type Database, type FinishedJob, type JobStore, type NewJob, type Queryable } from "@inferline/db";
import type { FinishedListener, FinishedNotifier } from "@inferline/queue";
import type { SubmitWriter } from "./submit-writer.ts";
import { longPoll } from "./long-poll.ts";

const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;

export interface JobServiceOptions {
  maxQueueDepth: number;
  /** Checks a webhook target (SSRF guard); throws ValidationError when refused. */
  checkWebhook?: (url: string) => Promise<void>;
  /** Webhook events of jobs this service finishes (cancels). */
  events?: EventSink;
}

/**
 * Records events in the transaction that finished their jobs (so a crash cannot keep the cancel
 * and lose its event), and enqueues their delivery after commit.
 */
export interface EventSink {
  record(q: Queryable, finished: FinishedJob[]): Promise<string[]>;
  enqueue(eventIds: string[]): Promise<void>;
}

export type SubmitResult = { job: JobView; replayed: boolean };

export class JobService {
  private depthCache = new Map<string, { depth: number; at: number }>();

  constructor(
    private readonly db: Database,
    private readonly store: JobStore,
    private readonly models: ModelRepository,
    private readonly writer: SubmitWriter,
    private readonly listener: FinishedListener,
    private readonly notifier: FinishedNotifier,
    private readonly options: JobServiceOptions,
  ) {}

  /** Validates against the model's manifest and builds the row; throws 404/422 before anything is stored. */
  async prepare(tenantId: string, body: JobSubmission, extra: Partial<NewJob> = {}): Promise<NewJob> {
    const model = this.models.resolve(body.model, body.version);
    const { value, faults } = validateInputs(model.manifest, body.inputs);
    faults.push(...validateOutputNames(model.manifest, body.outputs));
    if (!value || faults.length > 0) throw new ValidationError("the inputs do not match the model", faults);
    if (body.webhook) await this.options.checkWebhook?.(body.webhook.url);
    return {
      id: crypto.randomUUID(),
      tenantId,
      model: model.manifest.name,
      version: model.version,
      priority: body.priority,
      inputs: value.inputs,
      requestedOutputs: (body.outputs ?? []).map((o) => o.name),
      metadata: body.metadata,
      webhook: body.webhook ?? null,
      idempotencyKey: null,
      requestHash: null,
      batchId: null,
      batchIndex: null,
      customId: null,
      dispatchId: null,
      createdAt: new Date(),
      ...extra,
    };
  }

  async submit(tenantId: string, body: JobSubmission, idempotencyKey?: string): Promise<SubmitResult> {
    const job = await this.prepare(tenantId, body);
    await this.assertQueueHasRoom(job.model);
    if (idempotencyKey) return this.submitIdempotent(job, body, idempotencyKey);
    await this.writer.submit(job);
    this.noteQueued(job.model);
    return { job: viewOfNew(job), replayed: false };
  }

  /**
   * Same key and same body within 24 h returns the first job; same key and another body is a
   * conflict. Goes through a single-row insert so a race between two requests with one key ends
   * in the unique index, not in a failed group.
   */
  private async submitIdempotent(job: NewJob, body: JobSubmission, key: string): Promise<SubmitResult> {
    const hash = crypto.createHash("sha256").update(canonicalJson(body)).digest("hex");
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.store.findByIdempotencyKey(job.tenantId, key);
      if (existing && Date.now() - existing.createdAt.getTime() < IDEMPOTENCY_WINDOW_MS) {
        if (existing.requestHash !== hash) throw new ConflictError("idempotency_key_reused", "this Idempotency-Key was used with a different request body");
        return { job: toJobView(existing), replayed: true };
      }
      if (existing) await this.store.releaseIdempotencyKey(existing.id);
      try {
        await this.writer.submitOne({ ...job, idempotencyKey: key, requestHash: hash });
        this.noteQueued(job.model);
        return { job: viewOfNew(job), replayed: false };
      } catch (err) {
        if ((err as { code?: string }).code !== "23505") throw err;
      }
    }
    throw new ConflictError("idempotency_key_busy", "another request with this Idempotency-Key is in progress; retry");
  }

  async get(tenantId: string, id: string): Promise<JobView> {
    const job = isUuid(id) ? await this.store.get(tenantId, id) : null;
    if (!job) throw new NotFoundError("job", id);
    return toJobView(job);
  }

  /** The job once terminal, or as it is after `waitSeconds`; woken by workers' finished events. */
  wait(tenantId: string, id: string, waitSeconds: number, signal: AbortSignal): Promise<JobView> {
    return longPoll(this.listener, id, waitSeconds, signal, () => this.get(tenantId, id), (job) => isTerminal(job.status));
  }

  async list(tenantId: string, query: JobListQuery): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const page = await this.store.list(tenantId, query);
    return { jobs: page.jobs.map(toJobView), nextCursor: page.nextCursor };
  }

  async cancel(tenantId: string, id: string): Promise<JobView> {
    const canceled = isUuid(id)
      ? await this.db.transaction(async (client) => {
          const job = await this.store.cancel(tenantId, id, client);
          return job && { job, events: (await this.options.events?.record(client, [job])) ?? [] };
        })
      : undefined;
    if (!canceled) {
      const job = await this.get(tenantId, id); // 404 when not the tenant's
      throw new ConflictError("job_not_cancelable", `job is already ${job.status}`);
    }
    await this.notifier.publish([id]).catch(() => {});
    await this.options.events?.enqueue(canceled.events);
    return this.get(tenantId, id);
  }

  /** Counts this process's own submits into the cached depth, so a burst cannot overshoot the limit between readings. */
  private noteQueued(model: string): void {
    const cached = this.depthCache.get(model);
    if (cached) cached.depth++;
  }

  /** The depth is read from `dispatches` at most once a second per model; submits in between count themselves in. */
  private async assertQueueHasRoom(model: string): Promise<void> {
    const cached = this.depthCache.get(model);
    let depth = cached && Date.now() - cached.at < 1000 ? cached.depth : undefined;
    if (depth === undefined) {
      depth = await this.store.pendingByModel(model);
      this.depthCache.set(model, { depth, at: Date.now() });
    }
    if (depth >= this.options.maxQueueDepth) {
      throw new ServiceUnavailableError("queue_full", `model ${model} has ${depth} queued jobs (limit ${this.options.maxQueueDepth}); retry later`, 5);
    }
  }
}

function viewOfNew(job: NewJob): JobView {
  return { id: job.id, status: "queued", model: job.model, version: job.version, priority: job.priority, createdAt: job.createdAt.toISOString(), attempts: 0, metadata: job.metadata };
}


/** JSON with sorted keys, so that the same body hashes the same whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
