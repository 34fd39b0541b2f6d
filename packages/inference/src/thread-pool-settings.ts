import type { ResourceLimits } from "node:worker_threads";
import type { BackoffSchedule } from "@inferline/runtime";
import type { RunnerSettings } from "./runner.ts";
import type { ThreadTaskSpec } from "./thread-task.ts";

/** Run timeout of a model whose manifest sets none, unless the runner's settings say otherwise. */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;
/** First delay before retrying a replacement that failed to load (RunnerSettings.replaceBackoffMs). */
export const DEFAULT_REPLACE_BACKOFF_MS = 1000;
/** The longest delay between two retries of a replacement. */
export const MAX_REPLACE_BACKOFF_MS = 30_000;

/** Retries of a replacement thread that failed to load: doubling from `baseMs` up to MAX_REPLACE_BACKOFF_MS, exact (one pool retries alone). */
export const replaceBackoff = (baseMs: number = DEFAULT_REPLACE_BACKOFF_MS): BackoffSchedule => ({
  baseMs,
  maxMs: MAX_REPLACE_BACKOFF_MS,
  jitter: 0,
});

/** What a thread pool takes beyond a runner's settings. */
export interface ThreadPoolSettings extends RunnerSettings {
  /** The thread task that `runTask` runs (see thread-task.ts). Default: none. */
  task?: ThreadTaskSpec;
  /** Heap limits of each thread (e.g. a smaller young generation, for less RSS). Default: Node's. */
  resourceLimits?: ResourceLimits;
  /** Node flags of each thread. Default: this process's, less profilers and inspectors. */
  execArgv?: string[];
  /**
   * Runs sent to a busy thread ahead of time, to wait there behind the one it runs, so that it
   * never waits for the main thread between runs (bulk callers: the CLI sends 1). A run's timeout
   * counts from when it starts; one waiting on a thread that dies or times out goes back to the
   * head of the queue, unharmed. Default 0: a thread gets its next run when it answers.
   */
  prefetch?: number;
}

/** What a pool reports as its threads come and go; tests and metrics listen here. */
export interface ThreadPoolEvents {
  "thread-ready": [{ threadId: number; replacement: boolean }];
  "thread-exit": [{ threadId: number; reason: string; busy: boolean }];
  "replacement-failed": [{ attempt: number; retryInMs: number; error: Error }];
}
