/**
 * Caps on requests of one kind running at once in this process: batch creations
 * (MAX_BATCH_UPLOADS, MAX_BATCH_UPLOADS_PER_TENANT, BATCH_UPLOAD_WAIT_MS), batch result streams
 * (MAX_RESULT_STREAMS, MAX_RESULT_STREAMS_PER_TENANT; no wait).
 */
export interface SlotLimits {
  /** Requests at once in this process. */
  perProcess: number;
  /** Requests at once of one tenant in this process. */
  perTenant: number;
  /** How long a request may wait for a free slot before it is refused (0: refused at once). */
  waitMs: number;
  /** Requests of one tenant that may wait at once; past it refused at once. Default: perTenant. */
  waitingPerTenant?: number;
}

/** Which cap refused a request: the tenant's own (429) or the process's (503). */
export type SlotRefusal = "tenant" | "process";

/**
 * One request's slot. Its holders (the HTTP exchange, and the work running on it, such as a
 * create) each release it once; the slot frees when the last one does, so neither a client that
 * disconnects mid-create nor an answer sent before the body was read leaves a slot taken or frees
 * one early.
 */
export class SlotLease {
  private holders = 1;

  constructor(private readonly free: () => void) {}

  /** Adds a holder; false when the slot was freed already (the client went away). */
  hold(): boolean {
    if (this.holders === 0) return false;
    this.holders++;
    return true;
  }

  release(): void {
    if (this.holders === 0) return;
    if (--this.holders === 0) this.free();
  }
}

interface Waiter {
  tenantId: string;
  grant: (lease: SlotLease) => void;
}

/**
 * Admission per process and per tenant. A request that finds its caps full waits up to `waitMs`
 * (first come, first served, skipping waiters whose own tenant is still at its cap) so that a
 * client's burst of small batches (`inferline score --remote` keeps a few in flight) queues
 * briefly instead of failing; each tenant may have at most `waitingPerTenant` waiting, and past
 * that or past the wait it is refused.
 */
export class TenantSlots {
  private active = 0;
  private readonly activeByTenant = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(readonly limits: SlotLimits) {}

  /** A lease, the cap that refused it, or "aborted" when `signal` fired while it waited. */
  acquire(tenantId: string, signal?: AbortSignal): Promise<SlotLease | SlotRefusal | "aborted"> {
    if (signal?.aborted) return Promise.resolve("aborted");
    // Every release serves the waiters it can, so none that could start is ever left waiting here.
    if (this.canStart(tenantId)) return Promise.resolve(this.grant(tenantId));
    const waitingOfTenant = this.waiting.filter((w) => w.tenantId === tenantId).length;
    const room = this.limits.waitingPerTenant ?? this.limits.perTenant;
    if (this.limits.waitMs <= 0 || waitingOfTenant >= room) return Promise.resolve(this.refusal(tenantId));
    return new Promise((resolve) => {
      const done = (answer: SlotLease | SlotRefusal | "aborted") => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve(answer);
      };
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done(this.refusal(tenantId)), this.limits.waitMs);
      const waiter: Waiter = { tenantId, grant: (lease) => done(lease) };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Requests holding a slot and waiting for one now (for tests and metrics). */
  stats(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  private canStart(tenantId: string): boolean {
    return this.active < this.limits.perProcess && (this.activeByTenant.get(tenantId) ?? 0) < this.limits.perTenant;
  }

  private refusal(tenantId: string): SlotRefusal {
    return (this.activeByTenant.get(tenantId) ?? 0) >= this.limits.perTenant ? "tenant" : "process";
  }

  private grant(tenantId: string): SlotLease {
    this.active++;
    this.activeByTenant.set(tenantId, (this.activeByTenant.get(tenantId) ?? 0) + 1);
    return new SlotLease(() => this.free(tenantId));
  }

  private free(tenantId: string): void {
    this.active--;
    const left = (this.activeByTenant.get(tenantId) ?? 1) - 1;
    if (left > 0) this.activeByTenant.set(tenantId, left);
    else this.activeByTenant.delete(tenantId);
    this.serveWaiters();
  }

  private serveWaiters(): void {
    for (let i = 0; i < this.waiting.length && this.active < this.limits.perProcess;) {
      const waiter = this.waiting[i]!;
      if (!this.canStart(waiter.tenantId)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      waiter.grant(this.grant(waiter.tenantId));
    }
  }
}
