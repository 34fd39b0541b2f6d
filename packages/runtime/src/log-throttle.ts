/** Default of LogThrottle's interval: a line a kind every 10 s while a fault lasts. */
export const DEFAULT_LOG_INTERVAL_MS = 10_000;

/**
 * At most one log line per kind per interval, with the count of those held back: while Redis or
 * PostgreSQL is away, every reconnect attempt and every failed command would otherwise write a
 * line, and an outage would flood the log it should be easy to find in.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(private readonly intervalMs = DEFAULT_LOG_INTERVAL_MS) {}

  /** Calls `write` with how many lines of `kind` were held back since the last one, or holds this one back. */
  write(kind: string, write: (held: number) => void): void {
    const now = Date.now();
    const seen = this.last.get(kind);
    if (seen && now - seen.at < this.intervalMs) {
      seen.held++;
      return;
    }
    this.last.set(kind, { at: now, held: 0 });
    write(seen?.held ?? 0);
  }
}

/** What throttledLogger needs of a logger (pino's warn and error fit). */
export interface LevelLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * `logger` with each message written at most once per interval, the lines held back counted in
 * `held`: for what a dependency's outage makes happen many times. A kind is the message and the
 * error's own (`obj.err`), so every reconnect's "connect ECONNREFUSED" is one kind while a
 * different error under the same message still gets its line.
 */
export function throttledLogger(logger: LevelLogger, throttle = new LogThrottle()): LevelLogger {
  const withHeld = (obj: object, held: number) => (held > 0 ? { ...obj, held } : obj);
  const kind = (obj: object, msg: string) => {
    const err = (obj as { err?: unknown }).err;
    return typeof err === "string" ? `${msg}\u0000${err}` : msg;
  };
  return {
    warn: (obj, msg) => throttle.write(kind(obj, msg), (held) => logger.warn(withHeld(obj, held), msg)),
    error: (obj, msg) => throttle.write(kind(obj, msg), (held) => logger.error(withHeld(obj, held), msg)),
  };
}
