import crypto from "node:crypto";
import {
  BATCH_CHUNK_SIZE,
  BatchHeader,
  BatchItem,
  ConflictError,
  isUuid,
  MAX_BATCH_ITEMS,
  newBatchId,
  NotFoundError,
  validateInputs,
  validateOutputNames,
  ValidationError,
  type BatchView,
  type FieldFault,
  type FlatTensor,
  type ModelRepository,
  type ResolvedModel,
} from "@inferline/contracts";
import { canonicalJson, IDEMPOTENCY_WINDOW_MS } from "./idempotency.ts";
import type { Batch, BatchChunkStore, BatchSettlement, BatchStore, Database, NewBatch, NewBatchChunk, Queryable } from "@inferline/db";
import { longPoll } from "./long-poll.ts";
import type { Dispatcher, FinishedListener, FinishedNotifier } from "@inferline/queue";

/** An Idempotency-Key, and the SHA-256 of the request body's bytes (complete once the items are read). */
export interface BatchIdempotency {
  key: string;
  digest: () => string;
}

/** The body's hash together with the settings, which an NDJSON create carries in its query string. */
function requestHash(header: BatchHeader, idempotency: BatchIdempotency): string {
  // Only the header's own fields: a JSON body's items are in the digest already.
  const settings = Object.fromEntries(Object.keys(BatchHeader.shape).map((k) => [k, (header as Record<string, unknown>)[k]]));
  return crypto.createHash("sha256").update(canonicalJson(settings)).update(idempotency.digest()).digest("hex");
}

/** Faults reported for one batch; past this the client has enough to fix its file. */
const MAX_FAULTS = 100;

/**
 * Records `batch.completed` in the transaction that completed the batch (so a crash cannot keep
 * the cancel and lose the event), and enqueues its delivery after commit.
 */
export interface BatchEventSink {
  recordCompleted(q: Queryable, settlement: BatchSettlement): Promise<string[]>;
  enqueue(eventIds: string[]): Promise<void>;
}

export interface BatchServiceOptions {
  checkWebhook?: (url: string) => Promise<void>;
  events?: BatchEventSink;
}

export class BatchService {
  constructor(
    private readonly db: Database,
    private readonly batches: BatchStore,
    private readonly chunks: BatchChunkStore,
    private readonly models: ModelRepository,
    private readonly dispatcher: Dispatcher,
    private readonly notifier: FinishedNotifier,
    private readonly listener: FinishedListener,
    private readonly options: BatchServiceOptions = {},
  ) {}

  /**
   * Validates every item against the model before anything is stored (a batch with one bad item
   * creates nothing), then inserts the batch and its chunks in one transaction and enqueues one
   * queue entry per chunk. `items` may be an async stream (NDJSON) so the body is never buffered
   * whole. With an idempotency key, a create already made with that key (and the same body, which
   * `idempotency.digest` hashes once the items are read) returns the first batch instead.
   */
  async create(tenantId: string, header: BatchHeader, items: Iterable<unknown> | AsyncIterable<unknown>, idempotency?: BatchIdempotency): Promise<{ batch: BatchView; replayed: boolean }> {
    const model = this.models.resolve(header.model, header.version);
    if (idempotency) {
      const first = await this.firstWithKey(tenantId, idempotency.key);
      if (first) return this.replay(first, header, items, idempotency);
    }
    if (header.webhook) await this.options.checkWebhook?.(header.webhook.url);
    const { chunks, total } = await this.validChunks(model, header, items);
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
      requestHash: idempotency ? requestHash(header, idempotency) : null,
      createdAt: new Date(),
    };
    try {
      await this.batches.create(batch, chunks, total);
    } catch (err) {
      // Another request with this key won the race: answer as its replay.
      const first = idempotency && (err as { code?: string }).code === "23505" ? await this.firstWithKey(tenantId, idempotency.key) : null;
      if (!first) throw err;
      return this.replay(first, header, [], idempotency!);
    }
    const groups = chunks.map((c) => ({ dispatchId: c.id, model: batch.model, version: batch.version, priority: batch.priority, jobIds: [], batchChunk: true }));
    // A failed enqueue leaves the chunks pending in PostgreSQL; the workers' reconciler enqueues them.
    await this.dispatcher.enqueue(groups).catch(() => {});
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

  private async replay(first: Batch, header: BatchHeader, items: Iterable<unknown> | AsyncIterable<unknown>, idempotency: BatchIdempotency): Promise<{ batch: BatchView; replayed: boolean }> {
    for await (const _ of items); // the body must be read whole to hash it
    if (first.requestHash !== requestHash(header, idempotency)) throw new ConflictError("idempotency_key_reused", "this Idempotency-Key was used with a different batch");
    return { batch: await this.batches.view(first), replayed: true };
  }

  /** Every item, grouped into chunks, or a ValidationError naming up to MAX_FAULTS faults by item index and field. */
  private async validChunks(model: ResolvedModel, header: BatchHeader, items: Iterable<unknown> | AsyncIterable<unknown>): Promise<{ chunks: NewBatchChunk[]; total: number }> {
    const faults: FieldFault[] = validateOutputNames(model.manifest, header.outputs);
    const chunks: NewBatchChunk[] = [];
    let inputs: FlatTensor[][] = [];
    let customIds: Array<string | null> = [];
    /** Closes the chunk of the items read so far, the last of which is item `end - 1`. */
    const flush = (end: number) => {
      chunks.push({ id: crypto.randomUUID(), firstIndex: end - inputs.length, inputs, customIds });
      inputs = [];
      customIds = [];
    };
    let index = 0;
    for await (const raw of items) {
      if (index >= MAX_BATCH_ITEMS) throw new ValidationError(`a batch holds at most ${MAX_BATCH_ITEMS} items`, [{ path: `/items/${index}`, message: "too many items" }], 413);
      const base = `/items/${index}`;
      const item = BatchItem.safeParse(raw);
      const checked = item.success ? validateInputs(model.manifest, item.data.inputs, `${base}/inputs`) : undefined;
      if (!item.success) faults.push(...item.error.issues.map((i) => ({ path: `${base}/${i.path.join("/")}`.replace(/\/$/, ""), message: i.message })));
      else if (!checked?.value) faults.push(...(checked?.faults ?? []));
      else if (faults.length === 0) {
        inputs.push(checked.value.inputs);
        customIds.push(item.data.customId ?? null);
        if (inputs.length === BATCH_CHUNK_SIZE) flush(index + 1);
      }
      if (faults.length > MAX_FAULTS) break;
      index++;
    }
    if (faults.length > 0) throw new ValidationError(`the batch has invalid items; nothing was created`, faults.slice(0, MAX_FAULTS));
    if (index === 0) throw new ValidationError("a batch needs at least one item", [{ path: "/items", message: "no items" }]);
    if (inputs.length > 0) flush(index);
    return { chunks, total: index };
  }

  async get(tenantId: string, id: string): Promise<BatchView> {
    const batch = isUuid(id) ? await this.batches.get(tenantId, id) : null;
    if (!batch) throw new NotFoundError("batch", id);
    return this.batches.view(batch);
  }

  /** The batch once completed (or canceled), or as it is after `waitSeconds`; woken by the worker that finishes its last item. */
  wait(tenantId: string, id: string, waitSeconds: number, signal: AbortSignal): Promise<BatchView> {
    return longPoll(this.listener, id, waitSeconds, signal, () => this.get(tenantId, id), (b) => b.status === "completed" || b.status === "canceled");
  }

  /** Results in submission order; throws 404 before the first line when the batch is not the tenant's. */
  async results(tenantId: string, id: string): Promise<AsyncGenerator<string>> {
    await this.get(tenantId, id);
    return this.chunks.resultLines(id);
  }

  async cancel(tenantId: string, id: string): Promise<BatchView> {
    const view = await this.get(tenantId, id);
    if (view.status === "completed" || view.status === "canceled") throw new ConflictError("batch_not_cancelable", `batch is already ${view.status}`);
    const events = await this.db.transaction(async (client) => {
      const done = await this.batches.cancel(id, client);
      // Completed between the read above and the locks: a worker finished its last chunk.
      if (!done) throw new ConflictError("batch_not_cancelable", "batch is already completed");
      return done.settlement?.completed ? ((await this.options.events?.recordCompleted(client, done.settlement)) ?? []) : [];
    });
    // Wakes long-polls on the batch and on its items (which listen on the batch id).
    await this.notifier.publish([id]).catch(() => {});
    await this.options.events?.enqueue(events);
    return this.get(tenantId, id);
  }
}
