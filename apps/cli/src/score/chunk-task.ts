import type { ThreadTaskFactory } from "@inferline/inference";
import { ChunkScorer, type ChunkResult } from "./chunk-scorer.ts";
import type { ScoreSettings } from "./types.ts";

/** A chunk as it goes to a pool thread: its bytes (copied: the scorer keeps them to run again or to fail their rows) and its first line. */
export interface ChunkRequest {
  bytes: Uint8Array;
  /** 1-based input line of the chunk's first byte. */
  startLine: number;
}

/**
 * The inference pool's thread task for `inferline score` (LocalScorer names this module): each
 * pool thread parses, scores and formats whole chunks beside its loaded model, so that only a
 * chunk's bytes go to the thread and its formatted output comes back (transferred, not copied).
 */
export const createThreadTask: ThreadTaskFactory = async (model, data) => {
  const scorer = await ChunkScorer.create(model, data as ScoreSettings);
  return {
    async run(payload) {
      const { bytes, startLine } = payload as ChunkRequest;
      const value: ChunkResult = await scorer.score(bytes, startLine);
      return { value, transfer: [value.out.buffer as ArrayBuffer, value.errors.buffer as ArrayBuffer] };
    },
  };
};
