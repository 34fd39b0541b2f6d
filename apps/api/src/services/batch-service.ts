import crypto from "node:crypto";
import {
  BatchItem,
  ConflictError,
  isUuid,
  MAX_BATCH_ITEMS,
  NotFoundError,
  validateInputs,
  validateOutputNames,
  ValidationError,
  type BatchHeader,
  type BatchView,
  type FieldFault,
  type ModelRepository,
  type ResolvedModel,
} from "@inferline/contracts";
import type { BatchStore, Database, JobStore, NewBatch, NewJob } from "@inferline/db";
import type { EventSink } from "./job-service.ts";
import { longPoll } from "./long-poll.ts";
import type { Dispatcher, FinishedListener, FinishedNotifier } from "@inferline/queue";

/** Faults reported for one batch; past this the client has enough to fix its file. */
const MAX_FAULTS = 100;
/** Jobs per queue entry for batch items: bigger than for single submits, since they arrive together. */
const BATCH_ENTRY_SIZE = 512;

export interface BatchServiceOptions {
  checkWebhook?: (url: string) => Promise<void>;
  /** Webhook events of the items a cancel finishes, and of the batch's completion. */
  events?: EventSink;
}

export class BatchService {
  constructor(
    private readonly db: Database,
    private readonly batches: BatchStore,
    private readonly jobs: JobStore,
    private readonly models: ModelRepository,
    private readonly dispatcher: Dispatcher,
    private readonly notifier: FinishedNotifier,
    private readonly listener: FinishedListener,
    private readonly options: BatchServiceOptions = {},
  ) {}

  /**
   * Validates every item against the model before anything is stored (a batch with one bad item
   * creates nothing), then inserts the batch and its jobs in one transaction and enqueues them in
   * bulk. `items` may be an async stream (NDJSON) so the body is never buffered whole.
   */
  async create(tenantId: string, header: BatchHeader, items: Iterable<unknown> | AsyncIterable<unknown>): Promise<BatchView> {
    const model = this.models.resolve(header.model, header.version);
    if (header.webhook) await this.options.checkWebhook?.(header.webhook.url);
    const batch = { id: crypto.randomUUID(), tenantId, model: model.manifest.name, version: model.version, priority: header.priority, webhook: header.webhook ?? null, createdAt: new Date() };
    const jobs = await this.validItems(model, header, batch, items);
    // Batch items skip the per-item `running` write: progress shows in the batch's counts as items finish.
    const groups = this.dispatcher.plan(batch.model, batch.version, batch.priority, jobs, BATCH_ENTRY_SIZE).map((g) => ({ ...g, markRunning: false }));
    await this.batches.create(batch, jobs);
    // A failed enqueue leaves the jobs queued in PostgreSQL; the workers' reconciler enqueues them.
    for (let i = 0; i < groups.length; i += 500) await this.dispatcher.enqueue(groups.slice(i, i + 500)).catch(() => {});
    return this.get(tenantId, batch.id);
  }

  /** Every item as a job row, or a ValidationError naming up to MAX_FAULTS faults by item index and field. */
  private async validItems(model: ResolvedModel, header: BatchHeader, batch: NewBatch, items: Iterable<unknown> | AsyncIterable<unknown>): Promise<NewJob[]> {
    const faults: FieldFault[] = validateOutputNames(model.manifest, header.outputs);
    const requestedOutputs = (header.outputs ?? []).map((o) => o.name);
    const jobs: NewJob[] = [];
    let index = 0;
    for await (const raw of items) {
      if (index >= MAX_BATCH_ITEMS) throw new ValidationError(`a batch holds at most ${MAX_BATCH_ITEMS} items`, [{ path: `/items/${index}`, message: "too many items" }], 413);
      const base = `/items/${index}`;
      const item = BatchItem.safeParse(raw);
      const checked = item.success ? validateInputs(model.manifest, item.data.inputs, `${base}/inputs`) : undefined;
      if (!item.success) faults.push(...item.error.issues.map((i) => ({ path: `${base}/${i.path.join("/")}`.replace(/\/$/, ""), message: i.message })));
      else if (!checked?.value) faults.push(...(checked?.faults ?? []));
      else if (faults.length === 0) {
        jobs.push({
          id: crypto.randomUUID(),
          tenantId: batch.tenantId,
          model: batch.model,
          version: batch.version,
          priority: batch.priority,
          inputs: checked.value.inputs,
          requestedOutputs,
          metadata: header.metadata,
          webhook: null,
          idempotencyKey: null,
          requestHash: null,
          batchId: batch.id,
          batchIndex: index,
          customId: item.data.customId ?? null,
          dispatchId: null,
          createdAt: batch.createdAt,
        });
      }
      if (faults.length > MAX_FAULTS) break;
      index++;
    }
    if (faults.length > 0) throw new ValidationError(`the batch has invalid items; nothing was created`, faults.slice(0, MAX_FAULTS));
    if (jobs.length === 0) throw new ValidationError("a batch needs at least one item", [{ path: "/items", message: "no items" }]);
    return jobs;
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
    return this.batches.resultLines(id);
  }

  async cancel(tenantId: string, id: string): Promise<BatchView> {
    const view = await this.get(tenantId, id);
    if (view.status === "completed" || view.status === "canceled") throw new ConflictError("batch_not_cancelable", `batch is already ${view.status}`);
    const { canceled, events } = await this.db.transaction(async (client) => {
      await this.batches.markCanceled(id, client);
      const jobs = await this.jobs.cancelBatch(tenantId, id, client);
      return { canceled: jobs, events: (await this.options.events?.record(client, jobs)) ?? [] };
    });
    for (let i = 0; i < canceled.length; i += 5000) await this.notifier.publish(canceled.slice(i, i + 5000).map((j) => j.id)).catch(() => {});
    await this.notifier.publish([id]).catch(() => {});
    await this.options.events?.enqueue(events);
    return this.get(tenantId, id);
  }
}
