import type { Worker } from "node:worker_threads";
import type { PoolRun } from "./pool-runs.ts";
import type { ThreadReply } from "./pool-thread.ts";

/** A model the thread could not load, and why. */
export type ThreadFailure = Extract<ThreadReply, { type: "ready" }>["failed"][number];

/** A run sent to a thread, under the id its reply will carry (a late reply of an older run is ignored). */
interface SentRun {
  id: number;
  run: PoolRun;
}

/**
 * The pool's side of one thread: its state, the runs it holds (the first running, any others
 * prefetched behind it, waiting in the thread) and the timer of the run it runs.
 */
export class ThreadHandle {
  readonly threadId: number;
  /** Busy: it holds runs. Dead: forgotten by the pool (its own 'exit' is then ignored). */
  state: "starting" | "idle" | "busy" | "dead" = "starting";
  /** Settles the pool's start(): with the models that failed to load, or with why the thread never became ready. */
  settle: ((err: Error | undefined, failed?: ThreadFailure[]) => void) | undefined;
  private runs: SentRun[] = [];
  /**
   * Armed (refreshed) as each run starts and left running after the reply: firing while the thread
   * is busy means its current run is `timerMs` old. One timer per thread, not one per run.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;

  constructor(
    readonly worker: Worker,
    /** It replaces a lost thread: it must serve every model its pool serves. */
    readonly replacement: boolean,
    private readonly onTimeout: (t: ThreadHandle) => void,
  ) {
    this.threadId = worker.threadId;
  }

  /** Runs it holds: the one it runs and those waiting behind it. */
  get held(): number {
    return this.runs.length;
  }

  /** Posts a run; a run whose request cannot be posted (not cloneable) is not held, and the error is thrown. */
  send(id: number, run: PoolRun): void {
    const sent: SentRun = { id, run };
    this.runs.push(sent);
    if (this.runs.length === 1) {
      this.state = "busy";
      this.arm(run.timeoutMs);
    }
    try {
      const { message, transfer } = run.request(id);
      this.worker.postMessage(message, transfer);
    } catch (err) {
      // The thread is fine: a timer left running fires while it is idle, and does nothing.
      this.runs.splice(this.runs.indexOf(sent), 1);
      if (this.runs.length === 0) this.state = "idle";
      throw err;
    }
  }

  /** The run a reply answers (undefined for a late or unknown one); the thread goes on to the next it holds, or is idle. */
  answered(id: number): PoolRun | undefined {
    const done = this.runs[0];
    if (this.state !== "busy" || done?.id !== id) return undefined;
    this.runs.shift();
    // The thread went on to the run waiting behind it, if any: its time starts now.
    if (this.runs.length > 0) this.arm(this.runs[0]!.run.timeoutMs);
    else this.state = "idle";
    return done.run;
  }

  /** Every run it holds, in order (the running one first), now held by nobody. */
  takeRuns(): PoolRun[] {
    const runs = this.runs.map((sent) => sent.run);
    this.runs = [];
    return runs;
  }

  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Refreshing an armed timer of the same length allocates nothing. */
  private arm(ms: number): void {
    if (this.timer && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    // Unref'd: the thread itself keeps the process alive while a run is in flight.
    this.timer = setTimeout(this.onTimeout, ms, this).unref();
    this.timerMs = ms;
  }
}
