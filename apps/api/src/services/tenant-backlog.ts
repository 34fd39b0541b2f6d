import { LRUCache } from "lru-cache";
import type { QueueClass } from "@inferline/db";

export interface TenantBacklogOptions {
  /** How long a reading of a class's queued work is used. Default 1000 ms. */
  maxAgeMs?: number;
  /** Classes (tenant, model, priority) whose reading is kept at once. Default 10,000. */
  maxClasses?: number;
}

interface Reading {
  queued: number;
  at: number;
}

/**
 * The fair-share rank of new queue entries (see the queue package's entryPriority): the work its
 * tenant has queued of the entry's model and priority class ahead of it. Each class's queued work
 * is read from PostgreSQL at most once per `maxAgeMs` (one grouped statement for every stale class
 * of a write), and every entry ranked since counts itself in, as QueueDepthGuard does for depths.
 *
 * Read in the insert statement instead, the rank would cost a sum over the tenant's every queued
 * entry on each write, so submits would slow down as a backlog grew. The price of the reading's
 * age: work that started within the last
 * `maxAgeMs` still counts, so a tenant that keeps submitting is ranked by up to that long of its
 * own recent submits, and another API process's submits of that time are not counted yet.
 */
export class TenantBacklog {
  private readonly readings: LRUCache<string, Reading>;
  private readonly maxAgeMs: number;

  constructor(
    /** The classes' queued work, leaving out the entries named (the write being ranked, whose insert may run meanwhile). */
    private readonly read: (classes: QueueClass[], leaveOut: string[]) => Promise<number[]>,
    options: TenantBacklogOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.readings = new LRUCache({ max: options.maxClasses ?? 10_000 });
  }

  /**
   * Ranks entries in the order given (an entry's rank counts the entries of its class before it)
   * and counts them in. The reading leaves the entries themselves out, so it may run while they
   * are inserted. When PostgreSQL cannot be read, ranks from the readings it has (0 for a class
   * never read): the insert decides whether the submit succeeds.
   */
  async rank(entries: Array<QueueClass & { id: string; jobs: number }>): Promise<number[]> {
    const now = Date.now();
    const stale = new Map<string, QueueClass>();
    for (const e of entries) {
      const key = keyOf(e);
      const reading = this.readings.get(key);
      if (!reading || now - reading.at >= this.maxAgeMs)
        stale.set(key, { tenantId: e.tenantId, model: e.model, priority: e.priority });
    }
    if (stale.size > 0) {
      const values = await this.read(
        [...stale.values()],
        entries.map((e) => e.id),
      ).catch(() => undefined);
      if (values) [...stale.keys()].forEach((key, i) => this.readings.set(key, { queued: values[i] ?? 0, at: now }));
    }
    return entries.map((e) => {
      const key = keyOf(e);
      const reading = this.readings.get(key) ?? { queued: 0, at: 0 };
      const rank = reading.queued;
      reading.queued += e.jobs;
      this.readings.set(key, reading);
      return rank;
    });
  }
}

function keyOf(c: QueueClass): string {
  return `${c.tenantId}\u0000${c.model}\u0000${c.priority}`;
}
