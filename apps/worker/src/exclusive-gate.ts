/**
 * A readers-writer gate for the entries one worker process runs. Ordinary entries run
 * side by side (shared); an entry whose last worker died running it runs alone (exclusive),
 * so that if it kills this process too, no other entry's jobs die with it and have an attempt
 * counted against them. An exclusive run waits for the shared ones in flight and holds new ones
 * back until it is done (writer-preferring: a stream of ordinary entries cannot starve it).
 */
export class ExclusiveGate {
  private shared = 0;
  private exclusive = false;
  private readonly waiting: Array<{ exclusive: boolean; start: () => void }> = [];

  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    if (this.waiting.length === 0 && this.canStart(exclusive)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ exclusive, start: resolve }));
  }

  private canStart(exclusive: boolean): boolean {
    return exclusive ? !this.exclusive && this.shared === 0 : !this.exclusive;
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  /** Starts waiters in arrival order while they can start; an exclusive one first in line blocks those behind it. */
  private wake(): void {
    while (this.waiting.length > 0 && this.canStart(this.waiting[0]!.exclusive)) {
      const next = this.waiting.shift()!;
      this.take(next.exclusive);
      next.start();
    }
  }
}
