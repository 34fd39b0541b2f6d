import type { JobPriority } from "@inferline/contracts";

/**
 * BullMQ's highest priority (bullmq 6: `PRIORITY_LIMIT = 2 ** 21 - 1`). Priority 0 means "none"
 * and runs before every prioritised entry, so no entry gets 0; lower numbers run first, and
 * entries of one priority run in the order they were added.
 */
export const MAX_QUEUE_PRIORITY = 2 ** 21 - 1;

/** Priority levels of one class (high, normal, low): the classes never overlap. */
export const CLASS_SPAN = Math.floor(MAX_QUEUE_PRIORITY / 3);

/** The first (best) level of each class. */
export const CLASS_BASE: Record<JobPriority, number> = { high: 1, normal: 1 + CLASS_SPAN, low: 1 + 2 * CLASS_SPAN };

/**
 * The BullMQ priority of a queue entry, for fair share between tenants: its class's base plus its
 * tenant's queued work before it (`rank`, in jobs and batch items of that model and class)
 * divided by the tenant's weight. Entries then run in order of "work queued ahead of it by its
 * own tenant, per unit of weight": a tenant with nothing queued starts at the front of its class,
 * and backlogged tenants take turns (weighted fair queuing on queued work). Entries without a
 * rank (the reconciler's, the worker's isolated jobs and retries) take the class's base. Past
 * CLASS_SPAN - 1 a tenant's entries share the class's last level, first in first out.
 */
export function entryPriority(priority: JobPriority, rank = 0, weight = 1): number {
  const offset = Math.floor(Math.max(0, rank) / Math.max(1, weight));
  return CLASS_BASE[priority] + Math.min(CLASS_SPAN - 1, offset);
}
