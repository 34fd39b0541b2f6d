import { CLASS_BASE, CLASS_SPAN } from "@inferline/queue";

/**
 * Rows a slice of a model not yet measured here runs: one, since a slow model's first slices,
 * every slot's at once when a worker starts on a backlog, are what a light tenant waits behind.
 */
const PROBE_ROWS = 1;
/** Weight of each new slice in a model's mean hold per row. */
const ALPHA = 0.2;

/** The entry first in line on a queue: its tenant (undefined: an entry that names none, such as the reconciler's and isolated jobs') and BullMQ priority; null when nothing waits. */
export type NextInLine = (model: string, version: string) => Promise<{ tenantId?: string; priority: number } | null>;

/** Where a sliced run is: its entry's model, version, tenant, priority and its tenant's weight. */
export interface SliceSite {
  model: string;
  version: string;
  tenantId: string;
  priority: number;
  weight: number;
}

/**
 * Bounds how long one tenant's work holds a worker slot while another tenant's waits. A queue
 * entry carries up to 256 jobs, a batch chunk up to 512 items: for a heavy model that is seconds
 * of inference. The processor runs an entry's rows in slices sized to about `boundMs` of the
 * slot's time (each model's measured hold per row in this worker), and between slices asks who
 * is next on the entry's queue. The rest of the entry ranks as fair share would rank it had it
 * been queued alone: its tenant's work ahead of it grew by the rows that ran (see
 * yieldedPriority). When the next entry is another tenant's of that priority or a better one, the run writes what it ran and hands the rest back at that priority,
 * spending no attempt (see the processor's yieldRest). So a light tenant's job starts within
 * about one slice of a slot freeing; a tenant alone runs its entries whole as before; and
 * backlogged tenants take turns as their entries' ranks say, a slice being the smallest turn.
 */
export class SlotBound {
  private readonly holdPerRow = new Map<string, number>();

  constructor(
    private readonly boundMs: number,
    private readonly nextInLine: NextInLine,
    /** Called each time a run is told to stop and hand its rest back. */
    private readonly onYield: (model: string) => void = () => {},
  ) {}

  /** Rows of `model` the next slice runs: about boundMs of the slot's time, at least one. */
  sliceRows(model: string): number {
    const perRow = this.holdPerRow.get(model);
    if (perRow === undefined) return PROBE_ROWS;
    return Math.max(1, Math.floor(this.boundMs / Math.max(perRow, 1e-3)));
  }

  /** Notes a slice of `rows` rows of `model` that held its slot `ms`. */
  record(model: string, ms: number, rows: number): void {
    if (rows <= 0) return;
    const perRow = ms / rows;
    const seen = this.holdPerRow.get(model);
    this.holdPerRow.set(model, seen === undefined ? perRow : seen + ALPHA * (perRow - seen));
  }

  /** Whether another tenant's entry is next in line on the site's queue. A failed look counts as no (the run goes on). */
  async othersWaiting(site: SliceSite, done: number): Promise<boolean> {
    try {
      const next = await this.nextInLine(site.model, site.version);
      // An entry that names no tenant (added before entries named theirs) gets no slot handed to it.
      if (next === null || next.tenantId === undefined || next.tenantId === site.tenantId) return false;
      const yields = next.priority <= yieldedPriority(site.priority, done, site.weight);
      if (yields) this.onYield(site.model);
      return yields;
    } catch {
      return false;
    }
  }
}

/**
 * Runs `run` over `items` in slices sized by `bound` (all at once without one), checking between
 * slices whether another tenant waits; returns the items not run when it stopped for that
 * (empty when all ran). `mayStop` can forbid stopping (what ran must then be finished as usual).
 */
export async function runInSlices<T>(
  bound: SlotBound | undefined,
  site: SliceSite,
  items: T[],
  run: (item: T) => Promise<void>,
  mayStop: () => boolean = () => true,
): Promise<T[]> {
  if (!bound) {
    await Promise.all(items.map(run));
    return [];
  }
  let done = 0;
  while (done < items.length) {
    if (done > 0 && mayStop() && (await bound.othersWaiting(site, done))) return items.slice(done);
    const slice = items.slice(done, done + bound.sliceRows(site.model));
    const started = performance.now();
    await Promise.all(slice.map(run));
    bound.record(site.model, performance.now() - started, slice.length);
    done += slice.length;
  }
  return [];
}

/**
 * The priority of the rest of an entry of `priority` once `done` of its rows ran: fair share's
 * (see entryPriority) with its tenant's work ahead of it grown by those rows, per unit of weight,
 * and at least one level lower (so an entry of the priority it yielded to runs before it, and
 * that one does not yield back at once); within its class, whose last level it keeps.
 */
export function yieldedPriority(priority: number, done: number, weight: number): number {
  const base = Object.values(CLASS_BASE).find((b) => priority >= b && priority < b + CLASS_SPAN);
  if (base === undefined) return priority;
  return Math.min(base + CLASS_SPAN - 1, priority + Math.max(1, Math.floor(done / Math.max(1, weight))));
}
