import { Worker } from "node:worker_threads";
import type { ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome, SessionSettings } from "./loaded-model.ts";
import type { ModelRunner } from "./runner.ts";
import type { ThreadReply, ThreadRequest } from "./pool-thread.ts";

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, { resolve: (v: ItemOutcome[]) => void; reject: (e: unknown) => void }>;
}

const THREAD_URL = new URL("./pool-thread.mjs", import.meta.url);

/**
 * Runs sessions in worker threads, one session per model per thread, so inference never blocks
 * the main event loop (BullMQ lock renewals, HTTP, database I/O) and uses every core.
 */
export class ThreadPoolRunner implements ModelRunner {
  private readonly slots: Slot[] = [];
  private nextId = 1;

  constructor(readonly parallelism: number, private readonly settings: SessionSettings = {}) {}

  async load(models: ResolvedModel[]): Promise<void> {
    const serialisable = models.map((m) => ({ manifest: m.manifest, version: m.version, dir: m.dir, spec: m.spec }));
    await Promise.all(
      Array.from({ length: this.parallelism }, async () => {
        const worker = new Worker(THREAD_URL, { execArgv: threadExecArgv(), workerData: { models: serialisable, settings: this.settings } });
        const slot: Slot = { worker, busy: 0, pending: new Map() };
        this.slots.push(slot);
        await new Promise<void>((resolve, reject) => {
          worker.once("error", reject);
          worker.once("message", (m: ThreadReply) => (m.type === "ready" ? resolve() : reject(new Error(m.type === "load-error" ? m.message : "unexpected"))));
        });
        worker.on("message", (m: ThreadReply) => this.onReply(slot, m));
        worker.on("error", (err) => this.failAll(slot, err));
      }),
    );
  }

  run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]> {
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise<ItemOutcome[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ type: "run", id, key, items } satisfies ThreadRequest);
    });
  }

  private onReply(slot: Slot, m: ThreadReply): void {
    if (m.type !== "result" && m.type !== "run-error") return;
    const waiter = slot.pending.get(m.id);
    if (!waiter) return;
    slot.pending.delete(m.id);
    slot.busy--;
    if (m.type === "result") waiter.resolve(m.outcomes);
    else waiter.reject(new Error(m.message));
  }

  private failAll(slot: Slot, err: unknown): void {
    for (const w of slot.pending.values()) w.reject(err);
    slot.pending.clear();
    slot.busy = 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}

/** Profilers and inspectors stay on the main thread. */
function threadExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith("--cpu-prof") && !a.startsWith("--inspect"));
}
