import type { TenantCap } from "@inferline/db";

/**
 * The tenants' concurrency caps as the submit path sizes entries by them: a tenant's jobs of a
 * capped model go onto entries of at most its tightest cap there, so that a worker can run one
 * entry within the cap (an entry larger than a cap runs alone, its jobs side by side). Every cap
 * is read at once (a small table), in the background every `refreshMs`, so a submit waits on
 * nothing; until the first reading, and while PostgreSQL does not answer, the last caps read apply.
 */
export class CapSizes {
  private caps = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly read: () => Promise<TenantCap[]>,
    private readonly refreshMs: number,
  ) {}

  /** Reads the caps now and then every refreshMs; never rejects. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The most jobs an entry of the tenant's work on `model` should carry; undefined: no cap applies. */
  entrySize(tenantId: string, model: string): number | undefined {
    const own = this.caps.get(`${tenantId}\u0000${model}`);
    const all = this.caps.get(`${tenantId}\u0000*`);
    if (own === undefined) return all;
    return all === undefined ? own : Math.min(own, all);
  }

  private async refresh(): Promise<void> {
    try {
      const rows = await this.read();
      this.caps = new Map(rows.map((r) => [`${r.tenantId}\u0000${r.model}`, r.maxRunning]));
    } catch {
      // The last caps read stay; the next interval tries again.
    }
  }
}
