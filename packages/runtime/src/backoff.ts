/** How retries space out: doubling from `baseMs` up to `maxMs`, each delay drawn within its last `jitter` fraction. */
export interface BackoffSchedule {
  baseMs: number;
  maxMs: number;
  /** 0: exact delays; 0.5: each between half and all of its ceiling (default); 1: anywhere below it ("full jitter"). */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): exponential, capped, jittered,
 * so that processes that failed together do not retry together.
 */
export function backoffDelay(schedule: BackoffSchedule, attempt: number): number {
  const ceiling = Math.min(schedule.maxMs, schedule.baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  const jitter = schedule.jitter ?? 0.5;
  return Math.round(ceiling * (1 - jitter * Math.random()));
}
