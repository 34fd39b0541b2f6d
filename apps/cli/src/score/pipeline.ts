import type { ResolvedModel } from "@inferline/runtime";
import { LocalScorer } from "./local-scorer.ts";
import type { ScoreOptions } from "./score-options.ts";
import { planScore, type ScorePlan } from "./score-plan.ts";
import { reportScore } from "./score-report.ts";
import { scoreChunks, startRun } from "./score-run.ts";
import type { ScoreSettings, Scorer } from "./types.ts";

export type { ScoreOptions } from "./score-options.ts";

/**
 * `inferline score`: options → plan (model, checkpoint rules, input header) → run (reader →
 * scorer, chunks in parallel → ordered writer → checkpoint) → report. Returns the exit code;
 * throws UsageError for usage/IO problems. Without `makeScorer` it scores locally, on threads.
 */
export async function runScore(
  options: ScoreOptions,
  makeScorer?: (model: ResolvedModel, settings: ScoreSettings) => Scorer,
): Promise<number> {
  const plan = await planScore(options);
  const scorer = makeScorer ? makeScorer(plan.model, plan.settings) : localScorer(options, plan);
  const outputs = await startRun(plan, scorer);
  const end = await scoreChunks(plan, scorer, outputs, options);
  return reportScore(plan, end);
}

function localScorer(options: ScoreOptions, plan: ScorePlan): Scorer {
  return new LocalScorer(plan.model, plan.settings, {
    threads: options.threads,
    ...(options.adapterModules ? { adapterModules: options.adapterModules } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    warn: (message) => process.stderr.write(`inferline score: ${message}\n`),
  });
}
