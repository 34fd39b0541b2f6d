import crypto from "node:crypto";
import { requestCacheKey } from "@inferline/cache";
import {
  ConflictError,
  InvalidCursorError,
  isTerminal,
  isUuid,
  MAX_BATCH_ITEMS,
  NotFoundError,
  parseBatchItemId,
  validateInputs,
  validateOutputNames,
  ValidationError,
  type JobListQuery,
  type CacheMode,
  type JobStatus,
  type JobSubmission,
  type JobView,
} from "@inferline/contracts";
import { type ModelRepository } from "@inferline/runtime";
import {
  submittedFields,
  toJobView,
  viewOfAnsweredJob,
  viewOfNewJob,
  type BatchChunkStore,
  type JobStore,
  type NewJob,
  type Tenant,
} from "@inferline/db";
import type { OutcomeSystem } from "@inferline/outcomes";
import type { FinishedListener } from "@inferline/queue";
import type { SubmitWriter } from "./submit-writer.ts";
import { canonicalJson, IDEMPOTENCY_WINDOW_MS } from "./idempotency.ts";
import { longPoll } from "./long-poll.ts";
import { deadlineAfter, maxQueueSecondsOf } from "./deadlines.ts";
import type { CacheableJob, JobResultCache } from "./job-result-cache.ts";
import { SubmitWrites, type SubmitGuards } from "./submit-writes.ts";
import { activeTraceParent, annotateActive, ATTR, tracing } from "@inferline/telemetry";

export interface JobServiceOptions extends SubmitGuards {
  /** Checks a webhook target (SSRF guard); throws ValidationError when refused. */
  checkWebhook?: (url: string) => Promise<void>;
  /** DEFAULT_MAX_QUEUE_SECONDS: the queue deadline of jobs that name none on a model that sets none; unset, no limit. */
  defaultMaxQueueSeconds?: number;
  /** The result cache of models whose manifest sets `cache`; absent, nothing is looked up or cached. */
  cache?: JobResultCache;
  /**
   * Where lists read: stores over a pool of their own, so that however long a tenant's lists run
   * they never hold the connections submits need. Default: the service's own stores.
   */
  scans?: { jobs: Pick<JobStore, "list">; items: Pick<BatchChunkStore, "listItems"> };
}

export type SubmitResult = { job: JobView; replayed: boolean };

export class JobService {
  /** Submits with an Idempotency-Key in progress in this process, by tenant and key (see submitIdempotent). */
  private readonly keyed = new Map<string, Promise<unknown>>();

  constructor(
    /** Cancels (with their events, waiters and deliveries). */
    private readonly outcomes: Pick<OutcomeSystem, "cancelJob">,
    private readonly store: JobStore,
    private readonly items: BatchChunkStore,
    private readonly models: ModelRepository,
    private readonly writer: SubmitWriter,
    private readonly listener: FinishedListener,
    private readonly options: JobServiceOptions,
  ) {}

  /**
   * Validates against the model's manifest and builds the row; throws 404/422 before anything is
   * stored. The queue deadline counts from the job's creation (see maxQueueSecondsOf). For a model
   * with a result cache, the row carries the digest of what its result depends on (requestCacheKey
   * over the validated inputs, so key order and number spelling in the body do not matter).
   * `cancelAfterSeconds` (the Cancel-After header) counts from the same instant. The request's
   * fields a job stores as they are (priority, metadata, webhook, ...) come as the column table
   * lists them (submittedFields). Synchronous: the webhook target's check, which may resolve a
   * name, is submit's.
   */
  prepare(tenantId: string, body: JobSubmission, cancelAfterSeconds?: number): NewJob {
    const model = this.models.resolve(body.model, body.version, "");
    const { value, faults } = validateInputs(model.manifest, body.inputs);
    faults.push(...validateOutputNames(model.manifest, body.outputs));
    if (!value || faults.length > 0) throw new ValidationError("the inputs do not match the model", faults);
    const createdAt = new Date();
    const requestedOutputs = (body.outputs ?? []).map((o) => o.name);
    // `cache: "off"`: no digest, so the job neither looks up nor stores (it runs as a model without a cache would).
    const cacheKey =
      model.manifest.cache && this.options.cache && body.cache !== "off"
        ? requestCacheKey(tenantId, model, value.inputs, requestedOutputs)
        : null;
    const id = crypto.randomUUID();
    if (tracing.enabled)
      annotateActive({ [ATTR.jobId]: id, [ATTR.model]: model.manifest.name, [ATTR.version]: model.version });
    // Assigned onto the request's fields, not spread into a literal: V8 copies a spread object, built
    // key by key, on a slow path that cost more than the rest of the job's building and insert row.
    return Object.assign(submittedFields(body), {
      id,
      tenantId,
      model: model.manifest.name,
      version: model.version,
      inputs: value.inputs,
      requestedOutputs,
      idempotencyKey: null,
      requestHash: null,
      dispatchId: null,
      queueDeadline: deadlineAfter(
        createdAt,
        maxQueueSecondsOf(body.maxQueueSeconds, model.manifest, this.options.defaultMaxQueueSeconds),
      ),
      cancelAt: deadlineAfter(createdAt, cancelAfterSeconds),
      createdAt,
      cacheKey,
      // The submit's span (OpenTelemetry; null when off): the worker's and webhooks' spans join its trace.
      traceParent: activeTraceParent(),
    });
  }

  /**
   * Stores and enqueues a job of `tenant` (its weight orders its entries, its quota bounds its
   * queued work). With `cancelAfterSeconds` (the Cancel-After header), the job is canceled if it
   * is not terminal that long from now. A job the result cache answers is stored succeeded and
   * never enqueued (see JobResultCache).
   */
  async submit(
    tenant: Tenant,
    body: JobSubmission,
    idempotencyKey?: string,
    cancelAfterSeconds?: number,
  ): Promise<SubmitResult> {
    const job = this.prepare(tenant.id, body, cancelAfterSeconds);
    // The webhook target's check (it may resolve a name), after the inputs' so 422s keep their order.
    if (body.webhook) await this.options.checkWebhook?.(body.webhook.url);
    if (idempotencyKey) return this.submitIdempotent(tenant, job, body, idempotencyKey);
    return { job: await this.place(tenant, job, body.cache), replayed: false };
  }

  /**
   * Stores the job: through the result cache for a model that has one (a hit, a follower of an
   * identical job in flight, or a run), else queued to run.
   */
  private async place(tenant: Tenant, job: NewJob, mode: CacheMode | undefined): Promise<JobView> {
    const writes = new SubmitWrites(this.writer, this.options, tenant, job);
    const spec =
      job.cacheKey && this.options.cache ? this.models.resolve(job.model, job.version).manifest.cache : undefined;
    if (!spec || !this.options.cache) {
      await writes.admit();
      await writes.run(job);
      return viewOfNewJob(job);
    }
    const placed = await this.options.cache.place(job as CacheableJob, spec, mode === "bypass", writes);
    if (placed.kind === "answered") return viewOfAnsweredJob(job, placed.result, placed.answeredAt);
    if (placed.kind === "answeredByLeader") {
      // Answered in PostgreSQL from the identical job's stored result: shown as stored.
      const row = await this.store.get(job.tenantId, job.id);
      if (row) return toJobView(row);
    }
    return viewOfNewJob(job);
  }

  /**
   * Same key and same body within 24 h returns the first job; same key and another body is a
   * conflict. A client that retries a slow request sends the same key again while the first is
   * still in progress: in this process such requests take turns, each reading what the one before
   * it stored, so a retry storm costs one lookup per retry and never a failed write. The job is
   * group-committed like any other; a race with another API process ends in the unique index
   * (that row alone fails, see SubmitWriter) and the loser answers with the winner's job.
   */
  private async submitIdempotent(tenant: Tenant, job: NewJob, body: JobSubmission, key: string): Promise<SubmitResult> {
    const turn = `${tenant.id}\u0000${key}`;
    for (let before = this.keyed.get(turn); before; before = this.keyed.get(turn)) await before.catch(() => {});
    const mine = this.storeIdempotent(tenant, job, body, key);
    this.keyed.set(turn, mine);
    try {
      return await mine;
    } finally {
      if (this.keyed.get(turn) === mine) this.keyed.delete(turn);
    }
  }

  private async storeIdempotent(tenant: Tenant, job: NewJob, body: JobSubmission, key: string): Promise<SubmitResult> {
    const hash = crypto.createHash("sha256").update(canonicalJson(body)).digest("hex");
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.store.findByIdempotencyKey(job.tenantId, key);
      if (existing && Date.now() - existing.createdAt.getTime() < IDEMPOTENCY_WINDOW_MS) {
        if (existing.requestHash !== hash)
          throw new ConflictError(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
          );
        return { job: toJobView(existing), replayed: true };
      }
      if (existing) await this.store.releaseIdempotencyKey(existing.id);
      try {
        return {
          job: await this.place(tenant, { ...job, idempotencyKey: key, requestHash: hash }, body.cache),
          replayed: false,
        };
      } catch (err) {
        if ((err as { code?: string }).code !== "23505") throw err;
      }
    }
    throw new ConflictError("idempotency_key_busy", "another request with this Idempotency-Key is in progress; retry");
  }

  /** A job, or a batch item (whose id names its batch and index; see batchItemId). */
  async get(tenantId: string, id: string): Promise<JobView> {
    const job = isUuid(id) ? await this.store.get(tenantId, id) : null;
    if (job) return toJobView(job);
    const item = parseBatchItemId(id);
    const view = item ? await this.items.item(tenantId, item.batchId, item.index) : null;
    if (!view) throw new NotFoundError("job", id);
    return view;
  }

  /**
   * The job once terminal, or as it is after `waitSeconds`; woken by workers' finished events.
   * Batch items are announced by their batch's id (one message per chunk, not one per item).
   */
  async wait(tenantId: string, id: string, waitSeconds: number, signal: AbortSignal): Promise<JobView> {
    // One read before the first wait: it listens on the id as a job's, and should the read show a
    // batch item, on its batch's channel instead (then reading once more).
    return longPoll(this.listener, {
      channel: id,
      waitSeconds,
      signal,
      read: () => this.get(tenantId, id),
      done: (job) => isTerminal(job.status),
      // The worker's message: the job as this tenant's read would show it (the poll's first read found it theirs).
      fromView: (view) => (isAnnouncedView(view, id) ? view : undefined),
      channelOf: (job) => job.batchId ?? id,
    });
  }

  /** Newest first. With `batchId`, the batch's items (highest index first); otherwise jobs submitted one by one. */
  async list(tenantId: string, query: JobListQuery): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    if (query.batchId) return this.listItems(tenantId, query.batchId, query);
    const page = await (this.options.scans?.jobs ?? this.store).list(tenantId, query);
    return { jobs: page.jobs.map(toJobView), nextCursor: page.nextCursor };
  }

  private async listItems(
    tenantId: string,
    batchId: string,
    query: JobListQuery,
  ): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    let beforeIndex = MAX_BATCH_ITEMS;
    if (query.cursor) {
      const match = /^item:(\d{1,6})$/.exec(Buffer.from(query.cursor, "base64url").toString("utf8"));
      if (!match || Number(match[1]) > MAX_BATCH_ITEMS) throw new InvalidCursorError();
      beforeIndex = Number(match[1]);
    }
    const page = await (this.options.scans?.items ?? this.items).listItems(tenantId, batchId, {
      beforeIndex,
      limit: query.limit,
      status: query.status,
      model: query.model,
    });
    const nextCursor = page.nextBefore === null ? null : Buffer.from(`item:${page.nextBefore}`).toString("base64url");
    return { jobs: page.jobs, nextCursor };
  }

  /** A job, or a batch item (through its chunk); a terminal one answers 409, another tenant's 404. */
  async cancel(tenantId: string, id: string): Promise<JobView> {
    if (!(await this.outcomes.cancelJob(tenantId, id))) {
      const job = await this.get(tenantId, id); // 404 when not the tenant's
      throw new ConflictError("job_not_cancelable", `job is already ${job.status}`);
    }
    return this.get(tenantId, id);
  }
}

/** A finished message's view of job `id` (see FinishedNotifier), checked for shape before it is answered. */
function isAnnouncedView(view: unknown, id: string): view is JobView {
  if (view === null || typeof view !== "object") return false;
  const { id: viewId, status } = view as { id?: unknown; status?: unknown };
  return viewId === id && typeof status === "string" && isTerminal(status as JobStatus);
}
