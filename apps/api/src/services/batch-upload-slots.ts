/** Caps on batch creations running at once in this process. */
export interface BatchUploadLimits {
  /** MAX_BATCH_UPLOADS: creations at once in this process (each streams a body and holds a PostgreSQL connection). */
  perProcess: number;
  /** MAX_BATCH_UPLOADS_PER_TENANT: creations at once of one tenant in this process. */
  perTenant: number;
  /** BATCH_UPLOAD_WAIT_MS: how long a creation may wait for a free slot before it is refused. */
  waitMs: number;
  /** A body that stops arriving for this long is answered 408 `upload_stalled` and its slot freed. Default 30 s (DRAFT_IDLE_TIMEOUT_MS). */
  bodyIdleMs?: number;
}

/** Which cap refused a creation: the tenant's own (429) or the process's (503). */
export type UploadRefusal = "tenant" | "process";

/**
 * One creation's slot. Its holders (the HTTP exchange, and the create running on it) each
 * release it once; the slot frees when the last one does, so neither a client that disconnects
 * mid-create nor an answer sent before the body was read leaves a slot taken or frees one early.
 */
export class UploadLease {
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
  grant: (lease: UploadLease) => void;
}

/**
 * Admission for batch creations, per process and per tenant. A creation that finds its caps
 * full waits up to `waitMs` (first come, first served, skipping waiters whose own tenant is
 * still at its cap) so that a client's burst of small batches (`inferline score --remote` keeps
 * a few in flight) queues briefly instead of failing; each tenant may have at most `perTenant`
 * waiting, and past that or past the wait it is refused.
 */
export class BatchUploadSlots {
  private active = 0;
  private readonly activeByTenant = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(readonly limits: BatchUploadLimits) {}

  /** A lease, the cap that refused it, or "aborted" when `signal` fired while it waited. */
  acquire(tenantId: string, signal?: AbortSignal): Promise<UploadLease | UploadRefusal | "aborted"> {
    if (signal?.aborted) return Promise.resolve("aborted");
    // Every release serves the waiters it can, so none that could start is ever left waiting here.
    if (this.canStart(tenantId)) return Promise.resolve(this.grant(tenantId));
    const waitingOfTenant = this.waiting.filter((w) => w.tenantId === tenantId).length;
    if (this.limits.waitMs <= 0 || waitingOfTenant >= this.limits.perTenant) return Promise.resolve(this.refusal(tenantId));
    return new Promise((resolve) => {
      const done = (answer: UploadLease | UploadRefusal | "aborted") => {
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

  /** Creations running and waiting now (for tests and metrics). */
  stats(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  private canStart(tenantId: string): boolean {
    return this.active < this.limits.perProcess && (this.activeByTenant.get(tenantId) ?? 0) < this.limits.perTenant;
  }

  private refusal(tenantId: string): UploadRefusal {
    return (this.activeByTenant.get(tenantId) ?? 0) >= this.limits.perTenant ? "tenant" : "process";
  }

  private grant(tenantId: string): UploadLease {
    this.active++;
    this.activeByTenant.set(tenantId, (this.activeByTenant.get(tenantId) ?? 0) + 1);
    return new UploadLease(() => this.free(tenantId));
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
