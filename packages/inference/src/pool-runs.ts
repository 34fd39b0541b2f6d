import type { TransferListItem } from "node:worker_threads";
import { InferlineError } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import type { ThreadReply, ThreadRequest } from "./pool-thread.ts";

type RunReply = Extract<ThreadReply, { id: number }>;

/**
 * A run waiting for a pool thread or running on one: what it posts, and how it ends in each way a
 * run can end. The pool handles threads and time; each kind of run decides what its callers see.
 */
export interface PoolRun {
  readonly key: string;
  readonly timeoutMs: number;
  /** Rows or items it carries, for logs. */
  readonly size: number;
  request(id: number): { message: ThreadRequest; transfer: TransferListItem[] };
  /** The thread answered: a result, or an error it caught. */
  answered(reply: RunReply): void;
  /** It never ran to an answer: the pool closed, or its request could not be posted. */
  fail(err: unknown): void;
  /** It outlived its timeout; its thread is being replaced. */
  timedOut(): void;
  /** Its thread died running it. Answers runs to queue first in its place (none once it is settled). */
  crashed(reason: string): PoolRun[];
  /** No thread can run it: every one is down and their replacements fail to load. */
  unavailable(): void;
}

const timeoutMessage = (ms: number) => `the inference run took longer than ${ms} ms; its thread was replaced`;
const unavailableMessage = (key: string) =>
  `no inference thread for ${key} is running: its replacement failed to load and is being retried`;

function retriable(code: string, message: string): ItemOutcome {
  return { ok: false, code, message, retriable: true };
}

/**
 * Items of one batch (the worker's runs). A thread that dies holding several has each of them run
 * again alone, ahead of the queue, so that only one that kills its thread again fails.
 */
export class ItemRun implements PoolRun {
  constructor(
    readonly key: string,
    private readonly items: InferenceItem[],
    readonly timeoutMs: number,
    private readonly resolve: (outcomes: ItemOutcome[]) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  request(id: number): { message: ThreadRequest; transfer: TransferListItem[] } {
    return { message: { type: "run", id, key: this.key, items: this.items }, transfer: [] };
  }

  answered(reply: RunReply): void {
    if (reply.type === "result") this.resolve(reply.outcomes);
    else
      this.reject(new Error(reply.type === "run-error" ? reply.message : `unexpected ${reply.type} for an item run`));
  }

  fail(err: unknown): void {
    this.reject(err);
  }

  timedOut(): void {
    this.resolve(this.items.map(() => retriable("inference_timeout", timeoutMessage(this.timeoutMs))));
  }

  unavailable(): void {
    this.resolve(this.items.map(() => retriable("inference_unavailable", unavailableMessage(this.key))));
  }

  crashed(reason: string): PoolRun[] {
    if (this.items.length === 1) {
      this.resolve([
        retriable("inference_crashed", `the inference thread died running this item (${reason}); it was replaced`),
      ]);
      return [];
    }
    const outcomes = new Array<ItemOutcome>(this.items.length);
    let left = this.items.length;
    return this.items.map(
      (item, i) =>
        new ItemRun(
          this.key,
          [item],
          this.timeoutMs,
          ([outcome]) => {
            outcomes[i] = outcome!;
            if (--left === 0) this.resolve(outcomes);
          },
          this.reject,
        ),
    );
  }
}

/**
 * A thread task's run (ThreadPoolRunner.runTask). Its payload is opaque to the pool, so a timeout,
 * a crash or no thread at all rejects it with a retriable InferlineError (`inference_timeout`,
 * `inference_crashed`, `inference_unavailable`) and the caller decides what to run again.
 */
export class TaskRun implements PoolRun {
  readonly size = 1;

  constructor(
    readonly key: string,
    private readonly payload: unknown,
    private readonly transfer: TransferListItem[],
    readonly timeoutMs: number,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  request(id: number): { message: ThreadRequest; transfer: TransferListItem[] } {
    return { message: { type: "task", id, key: this.key, payload: this.payload }, transfer: this.transfer };
  }

  answered(reply: RunReply): void {
    if (reply.type === "task-result") this.resolve(reply.value);
    else this.reject(new Error(reply.type === "run-error" ? reply.message : `unexpected ${reply.type} for a task run`));
  }

  fail(err: unknown): void {
    this.reject(err);
  }

  timedOut(): void {
    this.reject(new InferlineError("inference_timeout", timeoutMessage(this.timeoutMs), { retriable: true }));
  }

  unavailable(): void {
    this.reject(new InferlineError("inference_unavailable", unavailableMessage(this.key), { retriable: true }));
  }

  crashed(reason: string): PoolRun[] {
    this.reject(
      new InferlineError("inference_crashed", `the inference thread died during the run (${reason}); it was replaced`, {
        retriable: true,
      }),
    );
    return [];
  }
}
