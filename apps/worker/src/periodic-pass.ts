import type { Logger } from "pino";

/**
 * Runs `pass` every `intervalMs` (0: never on its own) and on demand, never two at once: a call
 * while a pass is running gets that pass's result. The timer does not keep the process alive;
 * a failed pass is logged and the next one runs on schedule.
 */
export class PeriodicPass<T> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<T> | undefined;

  constructor(
    private readonly pass: () => Promise<T>,
    private readonly options: { intervalMs: number; logger: Logger; failure: string },
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.timer = setInterval(
      () =>
        void this.runOnce().catch((err: Error) => this.options.logger.warn({ err: err.message }, this.options.failure)),
      this.options.intervalMs,
    );
    this.timer.unref();
  }

  runOnce(): Promise<T> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}
