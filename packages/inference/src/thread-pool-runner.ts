import { EventEmitter } from "node:events";
import { Worker, type TransferListItem } from "node:worker_threads";
import { InferlineError } from "@inferline/contracts";
import { backoffDelay, type ResolvedModel } from "@inferline/runtime";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { modelKey, type ModelLoadFailure, type ModelRunner, type RunnerLogger } from "./runner.ts";
import type { ThreadData, ThreadReply } from "./pool-thread.ts";
import { ItemRun, TaskRun, type PoolRun } from "./pool-runs.ts";
import { ThreadHandle, type ThreadFailure } from "./thread-handle.ts";
import {
  DEFAULT_RUN_TIMEOUT_MS,
  replaceBackoff,
  type ThreadPoolEvents,
  type ThreadPoolSettings,
} from "./thread-pool-settings.ts";

// The tsx shim in development; in an app's bundle, the compiled thread (scripts/app-bundle.ts).
const THREAD_URL = new URL("./pool-thread.mjs", import.meta.url);

/**
 * Runs sessions in worker threads, one session per model per thread, so inference never blocks
 * the main event loop (BullMQ lock renewals, HTTP, database I/O) and uses every core.
 *
 * Each thread runs one batch at a time (with `prefetch`, more wait in the thread behind it); runs
 * wait in FIFO order while every thread is busy. A run that outlives its model's timeout gets its
 * thread terminated and its items answered `inference_timeout`; a thread that dies (exit,
 * uncaught error) is replaced, and the items of the batch it held run again one by one, so that
 * only an item that kills its thread again fails (`inference_crashed`). Both failures are
 * retriable. While every thread is down and each replacement has failed to load at least once,
 * runs are answered `inference_unavailable` (retriable) rather than left waiting; replacements
 * keep being retried with a backoff.
 *
 * Besides batches of items, a pool may serve a thread task (`settings.task`, run by `runTask`):
 * work of the caller's own that runs in the thread beside the model under the same timeouts and
 * replacement, rejected with those retriable codes instead (pool-runs.ts).
 */
export class ThreadPoolRunner extends EventEmitter<ThreadPoolEvents> implements ModelRunner {
  private readonly threads = new Set<ThreadHandle>();
  /** Ready threads with no run (a stack: the warmest thread runs next). Non-empty only while `waiting` is empty. */
  private readonly idle: ThreadHandle[] = [];
  private readonly waiting: PoolRun[] = [];
  private readonly timeouts = new Map<string, number>();
  /** Terminations still under way (close() waits for them) and pending replacement retries. */
  private readonly ending = new Set<Promise<number>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly logger: RunnerLogger | undefined;
  /** Runs a thread holds at most: the one it runs and those prefetched behind it. */
  private readonly depth: number;
  private threadData: ThreadData = { models: [], settings: {} };
  private nextId = 1;
  /** Threads that are ready (idle or busy). */
  private ready = 0;
  /** Thread slots whose replacement has failed to load and not yet come back. */
  private failing = 0;
  private closed = false;

  constructor(
    readonly parallelism: number,
    private readonly settings: ThreadPoolSettings = {},
  ) {
    super();
    if (!Number.isInteger(parallelism) || parallelism < 1)
      throw new RangeError(`a thread pool needs at least one thread, got ${parallelism}`);
    const prefetch = settings.prefetch ?? 0;
    if (!Number.isInteger(prefetch) || prefetch < 0)
      throw new RangeError(`prefetch must be a whole number, got ${prefetch}`);
    this.depth = 1 + prefetch;
    this.logger = settings.logger;
  }

  /** Threads ready to run (idle or busy) right now. */
  get readyThreads(): number {
    return this.ready;
  }

  async load(models: ResolvedModel[]): Promise<ModelLoadFailure[]> {
    const { intraOpThreads, adapterModules, task } = this.settings;
    const settings: ThreadData["settings"] = { intraOpThreads, adapterModules, ...(task ? { task } : {}) };
    this.threadData = {
      models: models.map((m) => ({ manifest: m.manifest, version: m.version, dir: m.dir, spec: m.spec })),
      settings,
    };
    const started = await Promise.allSettled(Array.from({ length: this.parallelism }, () => this.start(false)));
    const refused = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (refused) {
      await this.close();
      throw refused.reason;
    }
    return this.serve(
      models,
      (started as PromiseFulfilledResult<ThreadFailure[]>[]).flatMap((s) => s.value),
    );
  }

  /** Serves the models that no thread failed to load; answers the others. */
  private async serve(models: ResolvedModel[], failures: ThreadFailure[]): Promise<ModelLoadFailure[]> {
    const settings = this.threadData.settings;
    const broken = new Map<string, Error>();
    for (const f of failures) if (!broken.has(f.key)) broken.set(f.key, loadError(f));
    const served = models.filter((m) => !broken.has(modelKey(m.manifest.name, m.version)));
    for (const m of served) this.timeouts.set(modelKey(m.manifest.name, m.version), this.timeoutOf(m));
    // Replacements load only what the first threads could.
    this.threadData = {
      models: this.threadData.models.filter((m) => !broken.has(modelKey(m.manifest.name, m.version))),
      settings,
    };
    if (served.length === 0) await this.close();
    return models.flatMap((model) => {
      const error = broken.get(modelKey(model.manifest.name, model.version));
      return error ? [{ model, error }] : [];
    });
  }

  run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]> {
    return this.submit<ItemOutcome[]>(
      key,
      (timeoutMs, resolve, reject) => new ItemRun(key, items, timeoutMs, resolve, reject),
    );
  }

  /**
   * Runs the pool's thread task on a thread that loaded `key`, with `payload` (structured-cloned;
   * buffers in `transfer` are moved instead). Resolves with the task's value; rejects with a
   * retriable InferlineError `inference_timeout`, `inference_crashed` (its thread was replaced)
   * or `inference_unavailable`, or with the error the task threw.
   */
  runTask<T>(key: string, payload: unknown, transfer: TransferListItem[] = []): Promise<T> {
    if (!this.settings.task) return Promise.reject(new Error("this pool has no thread task (settings.task)"));
    return this.submit<T>(
      key,
      (timeoutMs, resolve, reject) =>
        new TaskRun(key, payload, transfer, timeoutMs, resolve as (v: unknown) => void, reject),
    );
  }

  private submit<T>(
    key: string,
    make: (timeoutMs: number, resolve: (v: T) => void, reject: (e: unknown) => void) => PoolRun,
  ): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    const timeoutMs = this.timeouts.get(key);
    if (timeoutMs === undefined) return Promise.reject(new Error(`model ${key} is not loaded`));
    return new Promise<T>((resolve, reject) => {
      const run = make(timeoutMs, resolve, reject);
      const thread = this.freeThread();
      if (thread) this.dispatch(thread, run);
      else if (this.unavailable()) run.unavailable();
      else this.waiting.push(run);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    const err = closedError();
    const threads = [...this.threads];
    this.threads.clear();
    this.idle.length = 0;
    this.ready = this.failing = 0;
    for (const t of threads) {
      const { settle } = t;
      t.disarm();
      t.state = "dead";
      t.settle = undefined;
      for (const run of t.takeRuns()) run.fail(err);
      settle?.(err);
    }
    for (const run of this.waiting.splice(0)) run.fail(err);
    await Promise.all([...threads.map((t) => t.worker.terminate()), ...this.ending]);
  }

  private timeoutOf(m: ResolvedModel): number {
    return (
      this.settings.timeoutOverrideMs ??
      m.manifest.timeoutMs ??
      this.settings.defaultTimeoutMs ??
      DEFAULT_RUN_TIMEOUT_MS
    );
  }

  /** Starts a thread; resolves when it is ready (and idle) with the models it could not load. */
  private start(replacement: boolean): Promise<ThreadFailure[]> {
    return new Promise<ThreadFailure[]>((resolve, reject) => {
      const { execArgv = threadExecArgv(), resourceLimits } = this.settings;
      const worker = new Worker(THREAD_URL, {
        execArgv,
        workerData: this.threadData,
        ...(resourceLimits ? { resourceLimits } : {}),
      });
      const t = new ThreadHandle(worker, replacement, this.onTimeout);
      t.settle = (err, failed) => {
        t.settle = undefined;
        if (err) reject(err);
        else resolve(failed ?? []);
      };
      this.threads.add(t);
      worker.on("message", (m: ThreadReply) => this.onMessage(t, m));
      worker.on("error", (err) => this.onDeath(t, `uncaught error: ${err.message}`));
      worker.on("exit", (code) => this.onDeath(t, `exit code ${code}`));
    });
  }

  private onMessage(t: ThreadHandle, m: ThreadReply): void {
    if (m.type === "result" || m.type === "task-result" || m.type === "run-error") {
      const done = t.answered(m.id);
      if (!done) return;
      this.next(t);
      done.answered(m);
    } else if (t.state === "starting") {
      if (m.type === "load-error") this.startFailed(t, new InferlineError(m.code ?? "thread_load_failed", m.message));
      // A replacement must serve every model its pool serves.
      else if (t.replacement && m.failed.length > 0) this.startFailed(t, loadError(m.failed[0]!));
      else this.becameReady(t, m.failed);
    }
  }

  private becameReady(t: ThreadHandle, failed: ThreadFailure[]): void {
    const settle = t.settle;
    t.state = "idle";
    this.ready++;
    this.emit("thread-ready", { threadId: t.threadId, replacement: t.replacement });
    this.next(t);
    settle?.(undefined, failed);
  }

  private startFailed(t: ThreadHandle, err: Error): void {
    const settle = t.settle;
    this.bury(t);
    settle?.(err);
  }

  /** Forgets a thread and terminates it; its own 'exit' is then ignored. */
  private bury(t: ThreadHandle): void {
    if (t.state === "idle" || t.state === "busy") this.ready--;
    const idle = this.idle.indexOf(t);
    if (idle >= 0) this.idle.splice(idle, 1);
    t.state = "dead";
    t.settle = undefined;
    t.disarm();
    this.threads.delete(t);
    const ended = t.worker.terminate();
    this.ending.add(ended);
    const done = () => void this.ending.delete(ended);
    ended.then(done, done);
  }

  private onDeath(t: ThreadHandle, reason: string): void {
    if (t.state === "dead") return;
    if (t.state === "starting") {
      this.startFailed(t, new InferlineError("thread_load_failed", `inference thread ended while loading: ${reason}`));
      return;
    }
    const [running, ...behind] = t.takeRuns();
    this.bury(t);
    this.emit("thread-exit", { threadId: t.threadId, reason, busy: running !== undefined });
    this.logger?.warn(
      { threadId: t.threadId, reason, model: running?.key, items: running?.size },
      "inference thread died; replacing it",
    );
    this.replace(0);
    if (running) this.crashed(running, reason, behind);
  }

  /** A thread's timer fired: `this`-bound, so that it is created once per thread. */
  private readonly onTimeout = (t: ThreadHandle): void => {
    if (t.state !== "busy") return;
    const [run, ...behind] = t.takeRuns();
    if (!run) return;
    this.bury(t);
    const reason = `run of ${run.key} timed out after ${run.timeoutMs} ms`;
    this.emit("thread-exit", { threadId: t.threadId, reason, busy: true });
    this.logger?.warn(
      { threadId: t.threadId, model: run.key, items: run.size, timeoutMs: run.timeoutMs },
      "inference run timed out; replacing its thread",
    );
    this.replace(0);
    run.timedOut();
    this.requeue(behind);
  };

  /**
   * A thread died running `run`: what the run puts back (a batch's items, alone) runs ahead of the
   * queue, then the runs that waited behind it on that thread, which never started.
   */
  private crashed(run: PoolRun, reason: string, behind: PoolRun[]): void {
    this.requeue([...run.crashed(reason), ...behind]);
  }

  private requeue(runs: PoolRun[]): void {
    if (runs.length === 0) return;
    this.waiting.unshift(...runs);
    this.drain();
  }

  /** Replaces a lost thread; a replacement that fails to load is retried with a doubling delay. */
  private replace(attempt: number): void {
    if (this.closed) return;
    this.start(true).then(
      () => {
        if (attempt === 0) return;
        this.failing--;
        this.logger?.info({ attempts: attempt + 1 }, "replacement inference thread ready");
      },
      (error: Error) => {
        if (this.closed) return;
        if (attempt === 0) this.failing++;
        const retryInMs = backoffDelay(replaceBackoff(this.settings.replaceBackoffMs), attempt);
        this.logger?.error(
          { err: error.message, attempt: attempt + 1, retryInMs, readyThreads: this.ready },
          "replacement inference thread failed to load; retrying",
        );
        this.emit("replacement-failed", { attempt: attempt + 1, retryInMs, error });
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.replace(attempt + 1);
        }, retryInMs);
        this.retries.add(timer);
        if (this.unavailable()) for (const run of this.waiting.splice(0)) run.unavailable();
      },
    );
  }

  /** Every thread is down and none of their replacements has loaded so far. */
  private unavailable(): boolean {
    return this.ready === 0 && this.failing >= this.parallelism;
  }

  private drain(): void {
    for (let t = this.freeThread(); t && this.waiting.length > 0; t = this.freeThread())
      this.dispatch(t, this.waiting.shift()!);
    if (this.unavailable()) for (const run of this.waiting.splice(0)) run.unavailable();
  }

  /** An idle thread (the warmest), else, with prefetch, the busy thread holding the fewest runs below its depth. */
  private freeThread(): ThreadHandle | undefined {
    const idle = this.idle.pop();
    if (idle || this.depth === 1) return idle;
    let best: ThreadHandle | undefined;
    for (const t of this.threads)
      if (t.state === "busy" && t.held < this.depth && (!best || t.held < best.held)) best = t;
    return best;
  }

  /** Fills a thread that answered (or became ready) from the queue, up to its depth; idle when nothing waits. */
  private next(t: ThreadHandle): void {
    while (t.state !== "dead" && t.held < this.depth && this.waiting.length > 0)
      this.dispatch(t, this.waiting.shift()!);
    this.parkIfIdle(t);
  }

  private dispatch(t: ThreadHandle, run: PoolRun): void {
    try {
      t.send(this.nextId++, run);
    } catch (err) {
      // Items that cannot be cloned: the run fails, the thread is fine.
      this.parkIfIdle(t);
      run.fail(err);
    }
  }

  private parkIfIdle(t: ThreadHandle): void {
    if (t.state === "idle" && !this.idle.includes(t)) this.idle.push(t);
  }
}

function loadError(f: ThreadFailure): Error {
  return new InferlineError(f.code ?? "model_load_failed", f.message);
}

function closedError(): Error {
  return new InferlineError("runner_closed", "the inference runner is closed", { retriable: true });
}

/** Profilers and inspectors stay on the main thread. */
function threadExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith("--cpu-prof") && !a.startsWith("--inspect"));
}
