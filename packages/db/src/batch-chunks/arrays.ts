import type { JobStatus } from "@inferline/contracts";

/*
 * A chunk keeps its items' states in arrays, one element per item: statuses (text[]), and results
 * and errors (json). These read and write them.
 */

/** An item's status: its own once terminal, else its chunk's (running once a worker took it). */
export function itemStatus(own: string, started: boolean): JobStatus {
  if (own !== "queued") return own as JobStatus;
  return started ? "running" : "queued";
}

/**
 * A chunk's result and error arrays are written one element per line ("[\n" + elements joined
 * by ",\n" + "\n]"; JSON.stringify never emits a raw newline): still one json value, which a
 * reader splits into each item's JSON text without parsing and re-serialising every result (which
 * would be the API's largest cost when streaming results). Arrays in another layout (the migration's
 * json_agg) are parsed.
 */
export function elementTexts(text: string | null): string[] | null {
  if (text === null) return null;
  if (text.startsWith("[\n")) return text.slice(2, -2).split(",\n");
  return (JSON.parse(text) as unknown[]).map((v) => JSON.stringify(v));
}

/** Elements as a chunk's array is written (see elementTexts). */
export function arrayText(elements: string[]): string {
  return `[\n${elements.join(",\n")}\n]`;
}
