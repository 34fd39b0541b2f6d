export interface TenantSlotLimits {
  /** Run at once per tenant in this process. */
  perTenant: number;
  /** Wait per tenant for a slot; past it refused at once. */
  waitingPerTenant: number;
  /** How long one waits for a slot before it is refused. */
  waitMs: number;
}

/** Why no slot was given: refused (its slots and waiting room full, or it waited waitMs), or the caller gave up. */
export type NoSlot = "refused" | "aborted";

interface Waiter {
  grant: () => void;
}

/**
 * Requests of one tenant that may run at once in this process, the rest waiting their turn
 * (first come, first served): a tenant's burst of database-heavy reads then holds a bounded share
 * of the connections and cores, and another tenant's requests never queue behind it. A slot is
 * released by calling the function `acquire` returned (once; later calls do nothing).
 */
export class TenantSlots {
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(readonly limits: TenantSlotLimits) {}

  acquire(tenantId: string, signal?: AbortSignal): Promise<(() => void) | NoSlot> {
    if (signal?.aborted) return Promise.resolve("aborted");
    if ((this.running.get(tenantId) ?? 0) < this.limits.perTenant) return Promise.resolve(this.grant(tenantId));
    const queue = this.waiting.get(tenantId) ?? [];
    if (queue.length >= this.limits.waitingPerTenant) return Promise.resolve("refused");
    this.waiting.set(tenantId, queue);
    return new Promise((resolve) => {
      const done = (answer: (() => void) | NoSlot) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.leaveQueue(tenantId, waiter);
        resolve(answer);
      };
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done("refused"), this.limits.waitMs);
      const waiter: Waiter = { grant: () => done(this.grant(tenantId)) };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Slots in use and requests waiting, over all tenants (for tests and metrics). */
  stats(): { running: number; waiting: number } {
    const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
    return { running: sum(this.running.values()), waiting: sum([...this.waiting.values()].map((q) => q.length)) };
  }

  private grant(tenantId: string): () => void {
    this.running.set(tenantId, (this.running.get(tenantId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.running.get(tenantId) ?? 1) - 1;
      // Tenants leave the maps when idle, so they hold only tenants with requests now.
      if (left > 0) this.running.set(tenantId, left);
      else this.running.delete(tenantId);
      this.waiting.get(tenantId)?.[0]?.grant();
    };
  }

  private leaveQueue(tenantId: string, waiter: Waiter): void {
    const queue = this.waiting.get(tenantId);
    const at = queue?.indexOf(waiter) ?? -1;
    if (at >= 0) queue!.splice(at, 1);
    if (queue?.length === 0) this.waiting.delete(tenantId);
  }
}
