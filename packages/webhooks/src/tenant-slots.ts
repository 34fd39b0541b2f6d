/** First delay of a parked entry, in ms (jittered ±50 %, growing with the tenant's parked entries). */
const BASE_PARK_MS = 250;
/** Longest delay of a parked entry, in ms: bounds the wait of one whose early wake-up was missed. */
const MAX_PARK_MS = 30_000;

interface Parked {
  entryId: string;
  /** When its delay ends and BullMQ puts it back on the queue by itself. */
  until: number;
}

/**
 * Webhook deliveries in flight per tenant in this process, at most `cap` each, and the queue
 * entries parked (moved to BullMQ's delayed set) because their tenant was at its cap. A parked
 * entry's delay grows with the number of its tenant's entries already parked, so a large backlog
 * behind a dead receiver costs a few queue operations a second, not a busy loop; and each slot the
 * tenant frees names one of its parked entries to wake at once, so a busy tenant with a fast
 * receiver keeps its `cap` slots full.
 */
export class TenantSlots {
  private readonly active = new Map<string, number>();
  private readonly parked = new Map<string, Parked[]>();

  constructor(
    readonly cap: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Takes a slot of `tenant`; false when it already has `cap` deliveries in flight here. */
  tryAcquire(tenant: string): boolean {
    const inFlight = this.active.get(tenant) ?? 0;
    if (inFlight >= this.cap) return false;
    this.active.set(tenant, inFlight + 1);
    return true;
  }

  /** Gives a slot back; returns the id of one of the tenant's parked entries to wake now, if any. */
  release(tenant: string): string | undefined {
    const inFlight = (this.active.get(tenant) ?? 1) - 1;
    if (inFlight > 0) this.active.set(tenant, inFlight);
    else this.active.delete(tenant);
    const waiting = this.live(tenant);
    return waiting.shift()?.entryId;
  }

  /** Records `entryId` as parked and returns its delay in ms. */
  park(tenant: string, entryId: string, now = Date.now()): number {
    const waiting = this.live(tenant, now);
    const base = Math.min(MAX_PARK_MS, BASE_PARK_MS * (1 + waiting.length / this.cap));
    const delay = Math.round(base * (0.5 + this.random()));
    waiting.push({ entryId, until: now + delay });
    this.parked.set(tenant, waiting);
    return delay;
  }

  inFlight(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  /**
   * The tenant's parked entries, without those whose delay has ended (BullMQ requeued them).
   * Pruned from the front only: delays grow along the list, so it is nearly in order, and the
   * count only scales the next delay.
   */
  private live(tenant: string, now = Date.now()): Parked[] {
    const waiting = this.parked.get(tenant);
    if (!waiting) return [];
    while (waiting.length > 0 && waiting[0]!.until <= now) waiting.shift();
    if (waiting.length === 0) this.parked.delete(tenant);
    return waiting;
  }
}
