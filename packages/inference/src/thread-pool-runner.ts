import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import { InferlineError, type ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { modelKey, type ModelLoadFailure, type ModelRunner, type RunnerLogger, type RunnerSettings } from "./runner.ts";
import type { ThreadData, ThreadReply, ThreadRequest } from "./pool-thread.ts";

const THREAD_URL = new URL("./pool-thread.mjs", import.meta.url);
/** Run timeout of a model whose manifest sets none, unless the runner's settings say otherwise. */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;
const DEFAULT_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/** A batch waiting for a thread, or running on one. */
interface Run {
  key: string;
  items: InferenceItem[];
  timeoutMs: number;
  resolve(outcomes: ItemOutcome[]): void;
  reject(err: unknown): void;
}

interface PoolThread {
  worker: Worker;
  threadId: number;
  replacement: boolean;
  state: "starting" | "idle" | "busy" | "dead";
  /** The run it holds while busy, and its id (a late reply of an older run is ignored). */
  run: Run | undefined;
  runId: number;
  /**
   * Armed (refreshed) at each dispatch and left running after the reply: firing while the thread
   * is busy means its current run is `timerMs` old. One timer per thread, not one per run.
   */
  timer: NodeJS.Timeout | undefined;
  timerMs: number;
  /** Settles start(): with the model keys that failed to load, or with why the thread never became ready. */
  settle: ((err: Error | undefined, failed?: ThreadFailure[]) => void) | undefined;
}

type ThreadFailure = Extract<ThreadReply, { type: "ready" }>["failed"][number];

/** What a pool reports as its threads come and go; tests and metrics listen here. */
export interface ThreadPoolEvents {
  "thread-ready": [{ threadId: number; replacement: boolean }];
  "thread-exit": [{ threadId: number; reason: string; busy: boolean }];
  "replacement-failed": [{ attempt: number; retryInMs: number; error: Error }];
}

/**
 * Runs sessions in worker threads, one session per model per thread, so inference never blocks
 * the main event loop (BullMQ lock renewals, HTTP, database I/O) and uses every core.
 *
 * Each thread runs one batch at a time; runs wait in FIFO order while every thread is busy. A run
 * that outlives its model's timeout gets its thread terminated and its items answered
 * `inference_timeout`; a thread that dies (exit, uncaught error) is replaced, and the items of
 * the batch it held run again one by one, so that only an item that kills its thread again fails
 * (`inference_crashed`). Both failures are retriable. While every thread is down and each
 * replacement has failed to load at least once, runs are answered `inference_unavailable`
 * (retriable) rather than left waiting; replacements keep being retried with a backoff.
 */
export class ThreadPoolRunner extends EventEmitter<ThreadPoolEvents> implements ModelRunner {
  private readonly threads = new Set<PoolThread>();
  /** Ready threads with no run (a stack: the warmest thread runs next). Non-empty only while `waiting` is empty. */
  private readonly idle: PoolThread[] = [];
  private readonly waiting: Run[] = [];
  private readonly timeouts = new Map<string, number>();
  /** Terminations still under way (close() waits for them) and pending replacement retries. */
  private readonly ending = new Set<Promise<number>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly logger: RunnerLogger | undefined;
  private threadData: ThreadData = { models: [], settings: {} };
  private nextId = 1;
  /** Threads that are ready (idle or busy). */
  private ready = 0;
  /** Thread slots whose replacement has failed to load and not yet come back. */
  private failing = 0;
  private closed = false;

  constructor(
    readonly parallelism: number,
    private readonly settings: RunnerSettings = {},
  ) {
    super();
    if (!Number.isInteger(parallelism) || parallelism < 1) throw new RangeError(`a thread pool needs at least one thread, got ${parallelism}`);
    this.logger = settings.logger;
  }

  /** Threads ready to run (idle or busy) right now. */
  get readyThreads(): number {
    return this.ready;
  }

  async load(models: ResolvedModel[]): Promise<ModelLoadFailure[]> {
    const settings = { intraOpThreads: this.settings.intraOpThreads, adapterModules: this.settings.adapterModules };
    this.threadData = { models: models.map((m) => ({ manifest: m.manifest, version: m.version, dir: m.dir, spec: m.spec })), settings };
    const started = await Promise.allSettled(Array.from({ length: this.parallelism }, () => this.start(false)));
    const refused = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (refused) {
      await this.close();
      throw refused.reason;
    }
    const broken = new Map<string, Error>();
    for (const s of started as PromiseFulfilledResult<ThreadFailure[]>[]) for (const f of s.value) if (!broken.has(f.key)) broken.set(f.key, loadError(f));
    const served = models.filter((m) => !broken.has(modelKey(m.manifest.name, m.version)));
    for (const m of served) this.timeouts.set(modelKey(m.manifest.name, m.version), this.timeoutOf(m));
    // Replacements load only what the first threads could.
    this.threadData = { models: this.threadData.models.filter((m) => !broken.has(modelKey(m.manifest.name, m.version))), settings };
    if (served.length === 0) await this.close();
    return models.flatMap((model) => {
      const error = broken.get(modelKey(model.manifest.name, model.version));
      return error ? [{ model, error }] : [];
    });
  }

  run(key: string, items: InferenceItem[]): Promise<ItemOutcome[]> {
    if (this.closed) return Promise.reject(closedError());
    const timeoutMs = this.timeouts.get(key);
    if (timeoutMs === undefined) return Promise.reject(new Error(`model ${key} is not loaded`));
    return new Promise<ItemOutcome[]>((resolve, reject) => {
      const run: Run = { key, items, timeoutMs, resolve, reject };
      const thread = this.idle.pop();
      if (thread) this.dispatch(thread, run);
      else if (this.unavailable()) run.resolve(unavailable(run));
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
      const { run, settle } = t;
      clearTimeout(t.timer);
      t.state = "dead";
      t.run = t.timer = t.settle = undefined;
      run?.reject(err);
      settle?.(err);
    }
    for (const run of this.waiting.splice(0)) run.reject(err);
    await Promise.all([...threads.map((t) => t.worker.terminate()), ...this.ending]);
  }

  private timeoutOf(m: ResolvedModel): number {
    return this.settings.timeoutOverrideMs ?? m.manifest.timeoutMs ?? this.settings.defaultTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  }

  /** Starts a thread; resolves when it is ready (and idle) with the models it could not load. */
  private start(replacement: boolean): Promise<ThreadFailure[]> {
    return new Promise<ThreadFailure[]>((resolve, reject) => {
      const worker = new Worker(THREAD_URL, { execArgv: threadExecArgv(), workerData: this.threadData });
      const t: PoolThread = { worker, threadId: worker.threadId, replacement, state: "starting", run: undefined, runId: 0, timer: undefined, timerMs: 0, settle: undefined };
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

  private onMessage(t: PoolThread, m: ThreadReply): void {
    if (m.type === "result" || m.type === "run-error") {
      const run = t.run;
      if (t.state !== "busy" || m.id !== t.runId || !run) return;
      t.run = undefined;
      t.state = "idle";
      this.next(t);
      if (m.type === "result") run.resolve(m.outcomes);
      else run.reject(new Error(m.message));
    } else if (t.state === "starting") {
      if (m.type === "load-error") this.startFailed(t, new InferlineError(m.code ?? "thread_load_failed", m.message));
      // A replacement must serve every model its pool serves.
      else if (t.replacement && m.failed.length > 0) this.startFailed(t, loadError(m.failed[0]!));
      else this.becameReady(t, m.failed);
    }
  }

  private becameReady(t: PoolThread, failed: ThreadFailure[]): void {
    const settle = t.settle;
    t.state = "idle";
    this.ready++;
    this.emit("thread-ready", { threadId: t.threadId, replacement: t.replacement });
    this.next(t);
    settle?.(undefined, failed);
  }

  private startFailed(t: PoolThread, err: Error): void {
    const settle = t.settle;
    this.bury(t);
    settle?.(err);
  }

  /** Forgets a thread and terminates it; its own 'exit' is then ignored. */
  private bury(t: PoolThread): void {
    if (t.state === "idle" || t.state === "busy") this.ready--;
    const idle = this.idle.indexOf(t);
    if (idle >= 0) this.idle.splice(idle, 1);
    t.state = "dead";
    t.settle = undefined;
    clearTimeout(t.timer);
    t.timer = undefined;
    this.threads.delete(t);
    const ended = t.worker.terminate();
    this.ending.add(ended);
    const done = () => void this.ending.delete(ended);
    ended.then(done, done);
  }

  private onDeath(t: PoolThread, reason: string): void {
    if (t.state === "dead") return;
    if (t.state === "starting") {
      this.startFailed(t, new InferlineError("thread_load_failed", `inference thread ended while loading: ${reason}`));
      return;
    }
    const run = t.run;
    t.run = undefined;
    this.bury(t);
    this.emit("thread-exit", { threadId: t.threadId, reason, busy: run !== undefined });
    this.logger?.warn({ threadId: t.threadId, reason, model: run?.key, items: run?.items.length }, "inference thread died; replacing it");
    this.replace(0);
    if (run) this.crashed(run, reason);
  }

  /** A thread's timer fired: `this`-bound, so that it is created once per thread. */
  private readonly onTimeout = (t: PoolThread): void => {
    const run = t.run;
    if (t.state !== "busy" || !run) return;
    t.run = undefined;
    this.bury(t);
    const reason = `run of ${run.key} timed out after ${run.timeoutMs} ms`;
    this.emit("thread-exit", { threadId: t.threadId, reason, busy: true });
    this.logger?.warn({ threadId: t.threadId, model: run.key, items: run.items.length, timeoutMs: run.timeoutMs }, "inference run timed out; replacing its thread");
    this.replace(0);
    run.resolve(run.items.map(() => retriable("inference_timeout", `the inference run took longer than ${run.timeoutMs} ms; its thread was replaced`)));
  };

  /**
   * A thread died holding `run`. One item alone is the culprit; a batch's items each run again
   * alone, ahead of the queue, so that only one that kills its thread again fails.
   */
  private crashed(run: Run, reason: string): void {
    if (run.items.length === 1) {
      run.resolve([retriable("inference_crashed", `the inference thread died running this item (${reason}); it was replaced`)]);
      return;
    }
    const outcomes = new Array<ItemOutcome>(run.items.length);
    let left = run.items.length;
    const alone = run.items.map<Run>((item, i) => ({
      key: run.key,
      items: [item],
      timeoutMs: run.timeoutMs,
      resolve: ([outcome]) => {
        outcomes[i] = outcome!;
        if (--left === 0) run.resolve(outcomes);
      },
      reject: run.reject,
    }));
    this.waiting.unshift(...alone);
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
        const retryInMs = Math.min((this.settings.replaceBackoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** attempt, MAX_BACKOFF_MS);
        this.logger?.error({ err: error.message, attempt: attempt + 1, retryInMs, readyThreads: this.ready }, "replacement inference thread failed to load; retrying");
        this.emit("replacement-failed", { attempt: attempt + 1, retryInMs, error });
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.replace(attempt + 1);
        }, retryInMs);
        this.retries.add(timer);
        if (this.unavailable()) for (const run of this.waiting.splice(0)) run.resolve(unavailable(run));
      },
    );
  }

  /** Every thread is down and none of their replacements has loaded so far. */
  private unavailable(): boolean {
    return this.ready === 0 && this.failing >= this.parallelism;
  }

  private drain(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) this.dispatch(this.idle.pop()!, this.waiting.shift()!);
    if (this.unavailable()) for (const run of this.waiting.splice(0)) run.resolve(unavailable(run));
  }

  private next(t: PoolThread): void {
    const run = this.waiting.shift();
    if (run) this.dispatch(t, run);
    else this.idle.push(t);
  }

  private dispatch(t: PoolThread, run: Run): void {
    t.state = "busy";
    t.run = run;
    t.runId = this.nextId++;
    if (t.timer && t.timerMs === run.timeoutMs) t.timer.refresh();
    else this.arm(t, run.timeoutMs);
    try {
      t.worker.postMessage({ type: "run", id: t.runId, key: run.key, items: run.items } satisfies ThreadRequest);
    } catch (err) {
      // Items that cannot be cloned: the run fails, the thread is fine (its timer fires idle).
      t.run = undefined;
      t.state = "idle";
      this.next(t);
      run.reject(err);
    }
  }

  private arm(t: PoolThread, ms: number): void {
    clearTimeout(t.timer);
    // Unref'd: the thread itself keeps the process alive while a run is in flight.
    t.timer = setTimeout(this.onTimeout, ms, t).unref();
    t.timerMs = ms;
  }
}

function retriable(code: string, message: string): ItemOutcome {
  return { ok: false, code, message, retriable: true };
}

function unavailable(run: Run): ItemOutcome[] {
  return run.items.map(() => retriable("inference_unavailable", `no inference thread for ${run.key} is running: its replacement failed to load and is being retried`));
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
