import crypto from "node:crypto";
import {
  BATCH_CHUNK_SIZE,
  BatchItem,
  MAX_BATCH_ITEMS,
  validateInputs,
  validateOutputNames,
  ValidationError,
  zodFaults,
  type BatchHeader,
  type FieldFault,
  type FlatTensor,
} from "@inferline/contracts";
import { type ResolvedModel } from "@inferline/runtime";
import type { BatchDraft, CommittedDraft, NewBatchChunk } from "@inferline/db";
import type { BatchItemCache } from "./batch-item-cache.ts";

/** Faults reported for one batch; past this the client has enough to fix its file. */
export const MAX_FAULTS = 100;

export interface BatchIntakeDeps {
  /** Opens the batch's transaction (when its first chunk is full, or at the end). */
  open: () => Promise<BatchDraft>;
  /** Throws when `count` items would take the model's queue past MAX_QUEUE_DEPTH. */
  checkDepth: (count: number) => Promise<void>;
  /** Commits the draft (through the outcome path: a batch answered whole from the cache completes with it). */
  commit: (draft: BatchDraft, total: number, requestHash: string | null) => Promise<CommittedDraft<unknown>>;
  /** The result cache of the batch's items; absent when the model has none. */
  cache?: BatchItemCache;
}

/** A committed batch: its item count, and the chunks to queue with their fair-share ranks. */
export interface IntakeResult {
  total: number;
  /** Items queued (the total less cache hits). */
  queued: number;
  chunkIds: string[];
  ranks: number[];
  completed: boolean;
}

/**
 * Reads a batch's items one at a time: validates each against the model, gathers valid ones into
 * chunks of BATCH_CHUNK_SIZE and hands each full chunk to the batch's draft, so that an upload
 * holds a few chunks at most, never the whole batch. The first fault rolls the draft back (a
 * batch with a bad item creates nothing); reading then goes on without storing, to report up to
 * MAX_FAULTS faults.
 */
export class BatchIntake {
  private readonly faults: FieldFault[];
  private count = 0;
  /** Items stored so far that wait for a run (not answered from the cache): what the queue and quota guards count. */
  private queued = 0;
  private inputs: FlatTensor[][] = [];
  private customIds: Array<string | null> = [];
  private draft: BatchDraft | undefined;

  constructor(
    private readonly model: ResolvedModel,
    header: BatchHeader,
    private readonly deps: BatchIntakeDeps,
  ) {
    this.faults = validateOutputNames(model.manifest, header.outputs);
  }

  /** Reads items until `items` ends, or until more than MAX_FAULTS faults are found. */
  async read(items: AsyncIterator<unknown>): Promise<void> {
    for (;;) {
      const next = await items.next();
      if (next.done) return;
      await this.take(next.value);
      if (this.faults.length > MAX_FAULTS) return;
    }
  }

  /** Commits the batch; returns its item count and the chunks to queue with their fair-share ranks (see BatchDraft.commit), or throws the faults found (422). */
  async finish(requestHash: () => string | null): Promise<IntakeResult> {
    if (this.faults.length > 0)
      throw new ValidationError("the batch has invalid items; nothing was created", this.faults.slice(0, MAX_FAULTS));
    if (this.count === 0)
      throw new ValidationError("a batch needs at least one item", [{ path: "/items", message: "no items" }]);
    if (this.inputs.length > 0) await this.closeChunk();
    const committed = await this.deps.commit(this.draft!, this.count, requestHash());
    return {
      total: this.count,
      queued: committed.queued,
      chunkIds: committed.chunkIds,
      ranks: committed.ranks,
      completed: committed.completed,
    };
  }

  /** Rolls back whatever was written; safe after finish. */
  async abort(): Promise<void> {
    await this.draft?.rollback();
  }

  private async take(raw: unknown): Promise<void> {
    const index = this.count;
    if (index >= MAX_BATCH_ITEMS)
      throw new ValidationError(
        `a batch holds at most ${MAX_BATCH_ITEMS} items`,
        [{ path: `/items/${index}`, message: "too many items" }],
        413,
      );
    this.count++;
    const base = `/items/${index}`;
    const item = BatchItem.safeParse(raw);
    if (!item.success) return this.fault(zodFaults(item.error, base));
    const checked = validateInputs(this.model.manifest, item.data.inputs, `${base}/inputs`);
    if (!checked.value) return this.fault(checked.faults);
    if (this.faults.length > 0) return;
    this.inputs.push(checked.value.inputs);
    this.customIds.push(item.data.customId ?? null);
    if (this.inputs.length === BATCH_CHUNK_SIZE) await this.closeChunk();
  }

  /** Records faults; the first one ends the draft, since nothing of this batch will be kept. */
  private async fault(faults: FieldFault[]): Promise<void> {
    const first = this.faults.length === 0;
    this.faults.push(...faults);
    if (!first) return;
    this.inputs = [];
    this.customIds = [];
    await this.draft?.rollback();
  }

  private async closeChunk(): Promise<void> {
    const inputs = this.inputs;
    const chunk: NewBatchChunk = {
      id: crypto.randomUUID(),
      firstIndex: this.count - inputs.length,
      inputs,
      customIds: this.customIds,
    };
    this.inputs = [];
    this.customIds = [];
    if (this.deps.cache) {
      const state = await this.deps.cache.chunk(inputs);
      chunk.cacheKeys = state.cacheKeys;
      chunk.hits = state.hits;
      this.queued += inputs.length - state.hitCount;
      // A chunk answered whole from the cache queues nothing: a full queue or quota does not refuse it.
      if (state.hitCount < inputs.length) await this.deps.checkDepth(this.queued);
    } else {
      this.queued += inputs.length;
      await this.deps.checkDepth(this.queued);
    }
    this.draft ??= await this.deps.open();
    await this.draft.add(chunk);
  }
}
