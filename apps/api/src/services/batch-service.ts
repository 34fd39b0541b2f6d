import crypto from "node:crypto";
import {
  BatchHeader,
  ConflictError,
  isUuid,
  newBatchId,
  NotFoundError,
  type BatchListPage,
  type BatchListQuery,
  type BatchView,
} from "@inferline/contracts";
import { type ModelRepository, type ResolvedModel } from "@inferline/runtime";
import { canonicalJson, IDEMPOTENCY_WINDOW_MS } from "./idempotency.ts";
import type { Batch, BatchChunkStore, BatchStore, NewBatch, Tenant } from "@inferline/db";
import type { OutcomeSystem } from "@inferline/outcomes";
import { activeTraceParent, annotateActive, ATTR, tracing } from "@inferline/telemetry";
import { longPoll } from "./long-poll.ts";
import type { Dispatcher, FinishedListener } from "@inferline/queue";
import { BatchIntake, type IntakeResult } from "./batch-intake.ts";
import { batchResultLines } from "./batch-results.ts";
import type { TenantSlots } from "./tenant-slots.ts";
import type { QueueDepthGuard } from "./queue-depth-guard.ts";
import type { TenantQuotaGuard } from "./quota-guard.ts";
import type { ModelAvailability } from "./model-availability.ts";
import { deadlineAfter, maxQueueSecondsOf } from "./deadlines.ts";
import type { CacheMetrics, ResultCache } from "@inferline/cache";
import { BatchItemCache } from "./batch-item-cache.ts";

/** An Idempotency-Key, and the SHA-256 of the request body's bytes (complete once the items are read). */
export interface BatchIdempotency {
  key: string;
  digest: () => string;
}

/** A batch as create() answers it: new, or the first one created with the request's Idempotency-Key. */
export type CreatedBatch = { batch: BatchView; replayed: boolean };

/** How a create request was sent, besides its settings and items. */
export interface BatchCreateOptions {
  /** The Idempotency-Key, and the body's hash. */
  idempotency?: BatchIdempotency;
  /** The Cancel-After header, in seconds. */
  cancelAfterSeconds?: number;
  /** Where the request holds the settings, for the pointers of their faults: "" (a JSON body, the default) or "/query" (NDJSON). */
  settingsAt?: "" | "/query";
}

/** The body's hash together with the settings, which an NDJSON create carries in its query string. */
function requestHash(header: BatchHeader, idempotency: BatchIdempotency): string {
  // Only the header's own fields: a JSON body's items are in the digest already.
  const settings = Object.fromEntries(
    Object.keys(BatchHeader.shape).map((k) => [k, (header as Record<string, unknown>)[k]]),
  );
  return crypto.createHash("sha256").update(canonicalJson(settings)).update(idempotency.digest()).digest("hex");
}

export interface BatchServiceOptions {
  /** MAX_QUEUE_DEPTH, shared with JobService. */
  depthGuard: QueueDepthGuard;
  /** Each tenant's maxQueued, shared with JobService. */
  quotaGuard: TenantQuotaGuard;
  /** Admission of creations (MAX_BATCH_UPLOADS, MAX_BATCH_UPLOADS_PER_TENANT); the route takes a slot before reading the body. */
  uploads: TenantSlots;
  /** Bounds of GET /v1/batches/:id/results. */
  resultStreams: ResultStreamLimits;
  /** BATCH_MAX_LINE_BYTES: the longest NDJSON line (one item). */
  maxLineBytes: number;
  checkWebhook?: (url: string) => Promise<void>;
  /** DEFAULT_MAX_QUEUE_SECONDS, as for JobService. */
  defaultMaxQueueSeconds?: number;
  /** The result cache (items of models whose manifest sets `cache`); absent, nothing is looked up and no digest is stored. */
  cache?: Pick<ResultCache, "getMany">;
  /** Where lookups are counted (ApiMetrics.cache). */
  cacheMetrics?: Pick<CacheMetrics, "lookups">;
  /** CACHE_COMMAND_TIMEOUT_MS (default 250): a lookup that took this long did not answer; the batch's later chunks skip the cache. */
  cacheCommandTimeoutMs?: number;
  /** Refuses a batch for a model version no worker can serve (shared with JobService). */
  availability?: Pick<ModelAvailability, "assertServable">;
  /**
   * Where lists read: a store over the lists' pool, so that a tenant's long lists never hold the
   * connections submits need. Default: the service's store.
   */
  scans?: Pick<BatchStore, "list">;
}

/** What one results stream may hold and how long it may wait on its client; how many may run. */
export interface ResultStreamLimits {
  /** Admission (MAX_RESULT_STREAMS, MAX_RESULT_STREAMS_PER_TENANT); the route takes a slot before reading. */
  slots: TenantSlots;
  /** RESULT_STREAM_PAGE_BYTES: most bytes of result and error JSON read at a time (at least one item). */
  pageBytes: number;
  /** RESULT_STREAM_IDLE_MS: a write that has not drained for this long closes the stream. */
  idleMs: number;
  /** Where pages are read: a pool of their own (the lists'), so streams never hold the connections submits need. Default: the service's store. */
  pages?: Pick<BatchChunkStore, "resultPages">;
}

/**
 * Items as create() takes them: an NDJSON stream, or a JSON body's array, which create() empties
 * as it reads it so that each raw item can be collected once it is validated and stored.
 */
export type BatchItems = unknown[] | AsyncIterable<unknown>;

export class BatchService {
  constructor(
    /** Cancels, and commits new batches (a batch answered whole from the cache completes with `batch.completed`). */
    private readonly outcomes: Pick<OutcomeSystem, "cancelBatch" | "commitBatch">,
    private readonly batches: BatchStore,
    private readonly chunks: BatchChunkStore,
    private readonly models: ModelRepository,
    private readonly dispatcher: Dispatcher,
    private readonly listener: FinishedListener,
    private readonly options: BatchServiceOptions,
  ) {}

  get uploads(): TenantSlots {
    return this.options.uploads;
  }

  get resultStreams(): ResultStreamLimits {
    return this.options.resultStreams;
  }

  get maxLineBytes(): number {
    return this.options.maxLineBytes;
  }

  /**
   * Validates items as they are read and writes them a few chunks at a time into one open
   * transaction (see BatchIntake and BatchDraft), so the body is never held whole; a bad item, a
   * full queue or any error rolls it back, so a batch is created whole or not at all. Then
   * enqueues one queue entry per chunk. With an idempotency key, a create already made with that
   * key (and the same body, which `idempotency.digest` hashes once the items are read) returns the
   * first batch instead. With `cancelAfterSeconds` (the Cancel-After header), every item not
   * terminal that long after the request is canceled.
   */
  async create(
    tenant: Tenant,
    header: BatchHeader,
    items: BatchItems,
    options: BatchCreateOptions = {},
  ): Promise<CreatedBatch> {
    const source = itemsOf(items);
    // Cancel-After counts from the request, before a long body is read.
    const cancelAt = deadlineAfter(new Date(), options.cancelAfterSeconds);
    try {
      // An unknown model or version is a 404 naming the field, before the body is read.
      const model = this.models.resolve(header.model, header.version, options.settingsAt ?? "");
      const knownCount = Array.isArray(items) ? items.length : 0;
      return await this.createFrom(tenant, header, model, knownCount, source, options.idempotency, cancelAt);
    } finally {
      // A body left unread (a 4xx before its end) stops being read, without destroying the request.
      await source.return?.(undefined);
    }
  }

  private async createFrom(
    tenant: Tenant,
    header: BatchHeader,
    model: ResolvedModel,
    knownCount: number,
    source: AsyncIterator<unknown>,
    idempotency: BatchIdempotency | undefined,
    cancelAt: Date | null,
  ): Promise<CreatedBatch> {
    const tenantId = tenant.id;
    if (idempotency) {
      const first = await this.firstWithKey(tenantId, idempotency.key);
      if (first) return this.replay(first, header, source, idempotency);
    }
    if (header.webhook) await this.options.checkWebhook?.(header.webhook.url);
    const { depthGuard: depth, quotaGuard: quota } = this.options;
    // `cache: "off"`: no digests, so no item is looked up or stored (as for a model without a cache).
    const itemCache =
      header.cache === "off"
        ? undefined
        : BatchItemCache.for(
            model,
            tenantId,
            { requestedOutputs: (header.outputs ?? []).map((o) => o.name), bypass: header.cache === "bypass" },
            this.options.cache,
            {
              commandTimeoutMs: this.options.cacheCommandTimeoutMs ?? 250,
            },
          );
    // Before reading the body: a full queue or quota refuses at once, and so does a JSON body whose
    // size would pass it, unless the cache may answer its items: hits queue nothing, so then each
    // chunk's misses are checked once it is looked up.
    const upfront = itemCache?.looksUp ? 0 : knownCount;
    await this.options.availability?.assertServable(model.manifest.name, model.version);
    await depth.assertRoom(model.manifest.name, upfront);
    await quota.assertRoom(tenant, upfront);
    const createdAt = new Date();
    const batch: NewBatch = {
      id: newBatchId(),
      tenantId,
      model: model.manifest.name,
      version: model.version,
      priority: header.priority,
      webhook: header.webhook ?? null,
      requestedOutputs: (header.outputs ?? []).map((o) => o.name),
      metadata: header.metadata,
      idempotencyKey: idempotency?.key ?? null,
      // Every item's deadline counts from the batch's creation (see maxQueueSecondsOf).
      queueDeadline: deadlineAfter(
        createdAt,
        maxQueueSecondsOf(header.maxQueueSeconds, model.manifest, this.options.defaultMaxQueueSeconds),
      ),
      cancelAt,
      createdAt,
      // The create request's span (OpenTelemetry; null when off): the chunks' spans join its trace.
      traceParent: activeTraceParent(),
    };
    if (tracing.enabled)
      annotateActive({ [ATTR.batchId]: batch.id, [ATTR.model]: batch.model, [ATTR.version]: batch.version });
    // Checked again as each chunk fills (an NDJSON body's size is known only as it is read).
    const admit = async (n: number) => {
      await depth.assertRoom(batch.model, n);
      await quota.assertRoom(tenant, n);
    };
    const intake = new BatchIntake(model, header, {
      open: () => this.batches.open(batch),
      checkDepth: (n) => admit(n),
      commit: (draft, total, hash) => this.outcomes.commitBatch(draft, total, hash),
      cache: itemCache,
    });
    let created: IntakeResult;
    try {
      await intake.read(source);
      created = await intake.finish(() => (idempotency ? requestHash(header, idempotency) : null));
    } catch (err) {
      await intake.abort();
      // Another request with this key won the race (its batch row holds the key): answer as its replay.
      const first =
        idempotency && (err as { code?: string }).code === "23505"
          ? await this.firstWithKey(tenantId, idempotency.key)
          : null;
      if (!first) throw err;
      return this.replay(first, header, source, idempotency!);
    }
    if (itemCache && this.options.cacheMetrics) itemCache.report(this.options.cacheMetrics);
    depth.noteQueued(batch.model, created.queued);
    quota.noteQueued(tenantId, created.queued);
    // Ranked like submitted jobs' entries (see SubmitWriter), so a huge batch takes turns with other tenants' work.
    const groups = created.chunkIds.map((id, i) => ({
      dispatchId: id,
      model: batch.model,
      version: batch.version,
      priority: batch.priority,
      jobIds: [],
      batchChunk: true,
      tenantId,
      rank: created.ranks[i],
      weight: tenant.weight,
    }));
    // A failed enqueue leaves the chunks pending in PostgreSQL; the workers' reconciler enqueues them.
    // Chunks answered whole from the cache have no entry; a batch answered whole has none at all.
    if (groups.length > 0) await this.dispatcher.enqueue(groups).catch(() => {});
    return { batch: await this.get(tenantId, batch.id), replayed: false };
  }

  /** The batch created with this key within the idempotency window; an older one gives its key up. */
  private async firstWithKey(tenantId: string, key: string): Promise<Batch | null> {
    const first = await this.batches.findByIdempotencyKey(tenantId, key);
    if (first && Date.now() - first.createdAt.getTime() >= IDEMPOTENCY_WINDOW_MS) {
      await this.batches.releaseIdempotencyKey(first.id);
      return null;
    }
    return first;
  }

  /** The first batch, once the rest of the body is read (it must be, to hash it) and matches. */
  private async replay(
    first: Batch,
    header: BatchHeader,
    rest: AsyncIterator<unknown>,
    idempotency: BatchIdempotency,
  ): Promise<CreatedBatch> {
    while (!(await rest.next()).done);
    if (first.requestHash !== requestHash(header, idempotency))
      throw new ConflictError("idempotency_key_reused", "this Idempotency-Key was used with a different batch");
    return { batch: await this.batches.view(first), replayed: true };
  }

  /** A page of the tenant's batches, newest first (read on the lists' pool when the service has one). */
  list(tenantId: string, query: BatchListQuery): Promise<BatchListPage> {
    return (this.options.scans ?? this.batches).list(tenantId, query);
  }

  async get(tenantId: string, id: string): Promise<BatchView> {
    const batch = isUuid(id) ? await this.batches.get(tenantId, id) : null;
    if (!batch) throw new NotFoundError("batch", id);
    return this.batches.view(batch);
  }

  /** The batch once completed (or canceled), or as it is after `waitSeconds`; woken by the worker that finishes its last item. */
  wait(tenantId: string, id: string, waitSeconds: number, signal: AbortSignal): Promise<BatchView> {
    return longPoll(this.listener, {
      channel: id,
      waitSeconds,
      signal,
      read: () => this.get(tenantId, id),
      done: (b) => b.status === "completed" || b.status === "canceled",
    });
  }

  /**
   * Results in submission order, a page of at most `resultStreams.pageBytes` of results at a time
   * (see BatchChunkStore.resultPages); throws 404 before the first line when the batch is not the tenant's.
   */
  async results(tenantId: string, id: string): Promise<AsyncGenerator<string>> {
    await this.get(tenantId, id);
    const { pages = this.chunks, pageBytes } = this.options.resultStreams;
    return batchResultLines(id, pages.resultPages(id, pageBytes));
  }

  async cancel(tenantId: string, id: string): Promise<BatchView> {
    const view = await this.get(tenantId, id);
    if (view.status === "completed" || view.status === "canceled")
      throw new ConflictError("batch_not_cancelable", `batch is already ${view.status}`);
    // Completed between the read above and the locks: a worker finished its last chunk.
    if (!(await this.outcomes.cancelBatch(id)))
      throw new ConflictError("batch_not_cancelable", "batch is already completed");
    return this.get(tenantId, id);
  }
}

/** One iterator over either form; an array's slots are cleared as they are read. */
function itemsOf(items: BatchItems): AsyncIterator<unknown> {
  return Array.isArray(items) ? consume(items) : items[Symbol.asyncIterator]();
}

async function* consume(items: unknown[]): AsyncGenerator<unknown> {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    items[i] = undefined;
    yield item;
  }
}
