import type { Refusal } from "./clients.ts";
import type { FaultRecord } from "./faults.ts";

/** What the refusals did around one fault: how many while it lasted, and how long after its end they went on. */
export interface FaultWindow {
  fault: string;
  startS: number;
  durationS: number;
  refusalsDuring: number;
  refusalsAfter: number;
  /** Seconds from the fault's end to the last refusal before the next fault began (0: none after it). */
  lastRefusalAfterEndS: number;
}

/**
 * For each fault (background worker kills aside, which are folded into whatever window they fall
 * in), the refusals during it and after it, up to the next fault's start.
 */
export function faultWindows(faults: FaultRecord[], refusals: Refusal[], t0: number, runEnd: number): FaultWindow[] {
  const major = faults.filter((f) => !f.name.includes("(background)")).sort((a, b) => a.start - b.start);
  return major.map((f, i) => {
    const next = major[i + 1]?.start ?? runEnd;
    const during = refusals.filter((r) => r.at >= f.start && r.at <= f.end).length;
    const after = refusals.filter((r) => r.at > f.end && r.at < next);
    const last = after.reduce((m, r) => Math.max(m, r.at), f.end);
    return {
      fault: f.name,
      startS: round((f.start - t0) / 1000),
      durationS: round((f.end - f.start) / 1000),
      refusalsDuring: during,
      refusalsAfter: after.length,
      lastRefusalAfterEndS: round((last - f.end) / 1000),
    };
  });
}

/** Refusals that came while no fault had ended within `graceMs` and none was under way: the API refusing on its own. */
export function refusalsOutsideFaults(faults: FaultRecord[], refusals: Refusal[], graceMs: number): number {
  const major = faults.filter((f) => !f.name.includes("(background)"));
  return refusals.filter((r) => !major.some((f) => r.at >= f.start && r.at <= f.end + graceMs)).length;
}

const round = (x: number) => Math.round(x * 10) / 10;
