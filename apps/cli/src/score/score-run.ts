import fs from "node:fs";
import { InferlineError } from "@inferline/contracts";
import { removeCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { FileSink, OrderedWriter, StreamSink, type Sink, type WrittenState } from "./ordered-writer.ts";
import { Progress } from "./progress.ts";
import { EXIT } from "../exit-codes.ts";
import type { ScoreOptions } from "./score-options.ts";
import type { ScorePlan } from "./score-plan.ts";
import { UsageError, type RawChunk, type Scorer } from "./types.ts";

/** Where scored rows and failed rows go. */
export interface Outputs {
  out: Sink;
  errors: Sink;
}

/** How the chunk loop ended, and what was written. */
export interface RunEnd {
  state: WrittenState;
  progress: Progress;
  /** What stopped the run early (a scorer's or a file's error), if anything did. */
  failure: unknown;
  signal: NodeJS.Signals | undefined;
  /** The reader of standard output went away. */
  outputClosed: boolean;
}

/** Starts the scorer and opens the outputs (cut back to the checkpoint on resume); failures here are usage errors. */
export async function startRun(plan: ScorePlan, scorer: Scorer): Promise<Outputs> {
  let out: Sink | undefined;
  let errors: Sink | undefined;
  try {
    await scorer.start();
    if (plan.checkpoint) {
      out = FileSink.open(plan.outPath!, plan.checkpoint.outBytes);
      errors = FileSink.open(plan.errorsPath, plan.checkpoint.errorsBytes);
    } else {
      out = plan.outPath ? FileSink.open(plan.outPath) : new StreamSink("standard output", process.stdout);
      errors = FileSink.open(plan.errorsPath);
      const header = plan.formatter.header();
      if (header) await out.write(Buffer.from(header));
    }
    return { out, errors };
  } catch (err) {
    plan.reader.close();
    await scorer.close();
    await out?.close();
    await errors?.close();
    throw asStartError(err);
  }
}

function asStartError(err: unknown): unknown {
  if (err instanceof InferlineError || err instanceof UsageError) return new UsageError(err.message);
  const code = (err as NodeJS.ErrnoException).code;
  if (code && !code.startsWith("ERR_")) return new UsageError(`cannot write output: ${(err as Error).message}`);
  return err;
}

/** Writes the checkpoint (after fsyncing both outputs), at most once per interval unless forced. */
class Checkpointer {
  private last = 0;

  constructor(
    private readonly plan: ScorePlan,
    private readonly outputs: Outputs,
    private readonly state: WrittenState,
    private readonly intervalMs: number,
  ) {}

  save(force: boolean): void {
    if (!this.plan.resumable) return;
    const now = performance.now();
    if (!force && now - this.last < this.intervalMs) return;
    this.last = now;
    const { out, errors } = this.outputs;
    out.sync();
    errors.sync();
    writeCheckpoint(this.plan.checkpointFile!, {
      version: 1,
      runId: this.plan.settings.runId,
      input: this.plan.inputId!,
      run: this.plan.run,
      ...this.state,
      outBytes: out.size,
      errorsBytes: errors.size,
    });
  }
}

/**
 * What ends reading early: Ctrl-C or SIGTERM (chunks in flight still finish and are written; a
 * second signal leaves at once, the last checkpoint standing) and a closed standard output.
 */
class Stops {
  signal: NodeJS.Signals | undefined;
  outputClosed = false;
  failure: unknown;

  constructor(private readonly toStdout: boolean) {
    process.on("SIGINT", this.onSignal);
    process.on("SIGTERM", this.onSignal);
    if (toStdout) process.stdout.on("error", this.onStdoutError);
  }

  get stopped(): boolean {
    return this.signal !== undefined || this.outputClosed;
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.signal) process.exit(signal === "SIGTERM" ? EXIT.sigterm : EXIT.sigint);
    this.signal = signal;
  };

  private readonly onStdoutError = (err: NodeJS.ErrnoException): void => {
    this.outputClosed = true;
    this.failure ??= err;
    if (err.code !== "EPIPE") process.stderr.write(`inferline: cannot write to standard output: ${err.message}\n`);
  };

  offSignals(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }

  offStdout(): void {
    if (this.toStdout) process.stdout.off("error", this.onStdoutError);
  }
}

/**
 * Reader → scorer (up to `scorer.parallelism` chunks at once) → ordered writer → checkpoint, until
 * the input ends or something stops it; then closes the input, the scorer and the outputs (a
 * complete run removes its checkpoint and an empty errors file; any other keeps a checkpoint).
 */
export async function scoreChunks(
  plan: ScorePlan,
  scorer: Scorer,
  outputs: Outputs,
  options: Pick<ScoreOptions, "checkpointIntervalMs" | "progress">,
): Promise<RunEnd> {
  const state: WrittenState = { ...plan.start };
  const mode = options.progress === "auto" ? (process.stderr.isTTY ? "bar" : "lines") : options.progress;
  const progress = new Progress({
    ...(plan.inputSize !== undefined ? { totalBytes: plan.inputSize } : {}),
    startBytes: state.inputOffset,
    startRows: state.rows,
    mode,
  });
  const checkpointer = new Checkpointer(plan, outputs, state, options.checkpointIntervalMs);
  const writer = new OrderedWriter(outputs.out, outputs.errors, state, (s) => {
    progress.update({ rows: s.rows, failures: s.failures, bytes: s.inputOffset });
    checkpointer.save(false);
  });
  checkpointer.save(true);
  const stops = new Stops(!plan.outPath);
  try {
    await feed(plan, scorer, writer, stops);
  } catch (err) {
    stops.failure = err;
  }
  await writer.idle().catch((err: unknown) => (stops.failure ??= err));
  stops.offSignals();
  plan.reader.close();
  await scorer.close();
  await closeOutputs(plan, outputs, checkpointer, stops);
  return { state, progress, failure: stops.failure, signal: stops.signal, outputClosed: stops.outputClosed };
}

/** Keeps up to `parallelism` chunks in flight; settles every one it started, even after a failure. */
async function feed(plan: ScorePlan, scorer: Scorer, writer: OrderedWriter, stops: Stops): Promise<void> {
  const inflight = new Set<Promise<void>>();
  try {
    while (!stops.stopped) {
      if (inflight.size >= scorer.parallelism) {
        await Promise.race(inflight);
        continue;
      }
      const chunk: RawChunk | undefined = await plan.reader.next();
      if (!chunk) break;
      const meta = { endOffset: chunk.endOffset, startLine: chunk.startLine, lineBreaks: chunk.lineBreaks };
      const job: Promise<void> = scorer
        .score(chunk)
        .then((scored) => writer.accept(meta, scored))
        .finally(() => inflight.delete(job));
      inflight.add(job);
    }
  } finally {
    const settled = await Promise.allSettled(inflight);
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    // A reading error (thrown above) wins over a chunk's.
    if (rejected) stops.failure ??= rejected.reason;
  }
}

async function closeOutputs(
  plan: ScorePlan,
  outputs: Outputs,
  checkpointer: Checkpointer,
  stops: Stops,
): Promise<void> {
  const complete = !stops.failure && !stops.stopped;
  try {
    if (complete) {
      outputs.out.sync();
      outputs.errors.sync();
    } else {
      checkpointer.save(true);
    }
    await outputs.out.close();
    await outputs.errors.close();
    stops.offStdout();
    if (complete) {
      if (plan.checkpointFile) removeCheckpoint(plan.checkpointFile);
      if (outputs.errors.size === 0) fs.rmSync(plan.errorsPath, { force: true });
    }
  } catch (err) {
    stops.failure ??= err;
  }
}
