import { backoffDelay, type BackoffSchedule } from "./backoff.ts";

/** A dependency a process needs before it can serve: its name, and a check that throws while it is away. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
}

export interface DependencyWaitLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Retries of a start-up check: from a quarter of a second up to 5 s apart. */
export const START_UP_BACKOFF: BackoffSchedule = { baseMs: 250, maxMs: 5000 };

/**
 * Waits until every dependency answers, checking them side by side and each again with backoff
 * while it is away: a process started while PostgreSQL or Redis is down or restarting waits
 * rather than exits. Logs once when a dependency is found away (with why, which names how to start
 * it) and once when it is back. Resolves when all answer; rejects only when `signal` aborts.
 */
export async function waitForDependencies(
  checks: readonly DependencyCheck[],
  log: DependencyWaitLog,
  signal?: AbortSignal,
  schedule = START_UP_BACKOFF,
): Promise<void> {
  await Promise.all(checks.map((c) => waitForOne(c, log, schedule, signal)));
}

async function waitForOne(
  dependency: DependencyCheck,
  log: DependencyWaitLog,
  schedule: BackoffSchedule,
  signal?: AbortSignal,
): Promise<void> {
  const since = Date.now();
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      await dependency.check();
      if (attempt > 0)
        log.info(
          { dependency: dependency.name, waitedMs: Date.now() - since },
          `${dependency.name} is reachable; starting`,
        );
      return;
    } catch (err) {
      if (attempt === 0)
        log.warn(
          { dependency: dependency.name, err: (err as Error).message },
          `${dependency.name} is not reachable yet; waiting for it`,
        );
    }
    await sleep(backoffDelay(schedule, attempt), signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason instanceof Error ? signal!.reason : new Error("aborted"));
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
