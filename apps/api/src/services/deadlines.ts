import type { ModelManifest } from "@inferline/contracts";

/** Shortest and longest Cancel-After, in seconds: 1 s to 3 days (the bounds of maxQueueSeconds). */
export const MIN_CANCEL_AFTER_SECONDS = 1;
export const MAX_CANCEL_AFTER_SECONDS = 259_200;

/** What a refused Cancel-After is told. */
export const CANCEL_AFTER_HINT =
  "Cancel-After must be a duration such as 90s, 5m, 1h or 1h30m, or a number of seconds, from 1 s to 3 days";

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1 };
/** Whole-number parts, each unit at most once and in this order (`1h30m`, `90s`), or bare seconds. */
const DURATION = /^(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,7})s)?$/;

/**
 * The seconds a `Cancel-After` header value names (`90s`, `5m`, `1h`, `1h30m`, or `90` for
 * seconds), or undefined when it names none or falls outside 1 s to 3 days.
 */
export function parseCancelAfter(value: string): number | undefined {
  const text = value.trim().toLowerCase();
  let seconds: number;
  if (/^\d{1,7}$/.test(text)) seconds = Number(text);
  else {
    const parts = DURATION.exec(text);
    if (!text || !parts) return undefined;
    seconds = ["h", "m", "s"].reduce((sum, unit, i) => sum + Number(parts[i + 1] ?? 0) * UNIT_SECONDS[unit]!, 0);
  }
  return seconds >= MIN_CANCEL_AFTER_SECONDS && seconds <= MAX_CANCEL_AFTER_SECONDS ? seconds : undefined;
}

/**
 * How long work may wait for a worker: the request's own `maxQueueSeconds`, else the model's
 * manifest default, else the operator's DEFAULT_MAX_QUEUE_SECONDS; undefined means no limit.
 */
export function maxQueueSecondsOf(
  requested: number | undefined,
  manifest: Pick<ModelManifest, "maxQueueSeconds">,
  operatorDefault: number | undefined,
): number | undefined {
  return requested ?? manifest.maxQueueSeconds ?? operatorDefault;
}

/** `from` plus `seconds`, or null without them (no deadline). */
export function deadlineAfter(from: Date, seconds: number | undefined): Date | null {
  return seconds === undefined ? null : new Date(from.getTime() + seconds * 1000);
}

/**
 * A request's `Cancel-After` header: `{ seconds }` (undefined without the header), or null when
 * the value names no duration in bounds (the route answers 400 invalid_cancel_after).
 */
export function cancelAfterHeader(value: string | undefined): { seconds: number | undefined } | null {
  if (value === undefined) return { seconds: undefined };
  const seconds = parseCancelAfter(value);
  return seconds === undefined ? null : { seconds };
}

/** The field fault of a refused Cancel-After header. */
export const CANCEL_AFTER_FAULT = { path: "/headers/cancel-after", message: CANCEL_AFTER_HINT };
