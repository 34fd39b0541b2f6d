import { EXIT, ExitError, exitCodeOf } from "../exit-codes.ts";
import type { ScorePlan } from "./score-plan.ts";
import type { RunEnd } from "./score-run.ts";

/**
 * The summary line, and the exit code: 0 every row scored, 1 some failed, 130/143 interrupted; a
 * failure is thrown saying how to resume, with the exit code of what failed (2 for input and
 * output, 3 for a cluster out of reach), and a closed standard output exits 1 with nothing more to say.
 */
function messageOf(failure: unknown): string {
  const message = (failure as { message?: unknown } | null)?.message;
  if (typeof message === "string") return message;
  return typeof failure === "string" ? failure : (JSON.stringify(failure) ?? "unknown failure");
}

export function reportScore(plan: ScorePlan, end: RunEnd): number {
  const { state, failure } = end;
  const where = `; output: ${plan.outPath ?? "standard output"}${state.failures > 0 ? `; failed rows: ${plan.errorsPath}` : ""}`;
  end.progress.summary({ rows: state.rows, failures: state.failures, bytes: state.inputOffset }, where);
  if (end.outputClosed || (failure as NodeJS.ErrnoException | undefined)?.code === "EPIPE") return EXIT.failed;
  if (failure) {
    const hint = plan.resumable
      ? ` (rerun with --resume to continue from row ${state.rows.toLocaleString("en-US")})`
      : "";
    throw new ExitError(`${messageOf(failure)}${hint}`, exitCodeOf(failure), { cause: failure });
  }
  if (end.signal) {
    process.stderr.write(
      `inferline score: interrupted${plan.resumable ? `; rerun with --resume to continue (checkpoint ${plan.checkpointFile})` : ""}\n`,
    );
    return end.signal === "SIGTERM" ? EXIT.sigterm : EXIT.sigint;
  }
  return state.failures > 0 ? EXIT.failed : EXIT.ok;
}
