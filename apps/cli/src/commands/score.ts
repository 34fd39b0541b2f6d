import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { InferenceEnv, parseEnv, type CacheMode } from "@inferline/contracts";
import { apiKeyOption, modelsDirOption, remoteOption } from "../cli-options.ts";
import { EXIT } from "../exit-codes.ts";
import { runScore, type ScoreOptions } from "../score/pipeline.ts";
import { UsageError } from "../score/types.ts";
import { DEFAULT_ROWS_PER_ITEM, RemoteScorer } from "../score/remote-scorer.ts";

interface ScoreFlags {
  model: string;
  modelVersion?: string;
  out?: string;
  format: "jsonl" | "csv";
  inputFormat?: "jsonl" | "csv";
  resume: boolean;
  force: boolean;
  threads: number;
  chunkSize: number;
  checkpointInterval: number;
  progress: "auto" | "bar" | "lines" | "off";
  remote?: string;
  apiKey?: string;
  modelsDir: string;
  concurrency: number;
  rowsPerItem: number;
  /** --cache's mode; false with --no-cache (the same as --cache bypass). */
  cache: "use" | "bypass" | "off" | false;
}

const positiveInt =
  (what: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a whole number of at least 1`);
    return n;
  };

const HELP = `
Input: a CSV file with a header line whose column names match the model's named features
(case-insensitive; extra columns are ignored; a missing feature column is an error before
anything runs), or a JSONL file whose lines are {"features": {...}}, a flat object of named
features, or {"inputs": [v2 tensors]} with one row each. An "id" (or "customId") column or field
is echoed in the output. "-" reads standard input (format from the first byte, or --input-format).

Output, in input order: JSONL lines {"line": N, "id"?: ..., "label": "<top class>",
"probabilities": {"<class>": p, ...}, "outputs"?: {"<other output>": [...]}}, or with
--format csv the columns line, id, label, prob_<class>..., <other output>_<i>...
"line" is the 1-based line of the input file where the row starts (in a CSV the header is line 1,
so the first data row is line 2). Rows that fail go to <out>.errors.jsonl (score-errors.jsonl when
writing to standard output) as {"line": N, "id"?: ..., "error": "..."}; the rest still score.

Exit codes: ${EXIT.ok} every row scored; ${EXIT.failed} some rows failed; ${EXIT.usage} usage or I/O error (missing file,
unknown model, missing CSV column); ${EXIT.unavailable} the cluster could not be reached (--remote); ${EXIT.sigint} interrupted
by Ctrl-C (${EXIT.sigterm} by SIGTERM).

Local scoring reads INFERENCE_TIMEOUT_MS and INFERENCE_ADAPTER_MODULES as a worker does.

Resume: with --out, progress is checkpointed to <out>.checkpoint.json (after fsyncing the output);
after Ctrl-C, kill -9 or a crash, run the same command with --resume to continue: no row is scored
twice or lost, and the output is byte-identical to an uninterrupted run.`;

export function registerScore(program: Command): void {
  program
    .command("score")
    .description("score a CSV or JSONL file with a model, in-process (default) or through a cluster (--remote)")
    .argument("<input>", "input file (.csv, .jsonl), or - for standard input")
    .requiredOption("-m, --model <name>", "model name (see `inferline models`)")
    .option("--model-version <version>", "model version (default: the model's default)")
    .option("-o, --out <file>", "output file (default: standard output)")
    .addOption(new Option("-f, --format <format>", "output format").choices(["jsonl", "csv"]).default("jsonl"))
    .addOption(
      new Option("--input-format <format>", "input format (default: from the file extension)").choices([
        "jsonl",
        "csv",
      ]),
    )
    .option("--resume", "continue an interrupted run from its checkpoint", false)
    .option("--force", "start over even if a checkpoint of an interrupted run exists", false)
    .option(
      "--threads <n>",
      "inference threads, each parsing, scoring and formatting whole chunks",
      positiveInt("--threads"),
      os.availableParallelism(),
    )
    .option(
      "--chunk-size <bytes>",
      "input bytes per chunk (a chunk is scored as one batch)",
      positiveInt("--chunk-size"),
      256 * 1024,
    )
    .option(
      "--checkpoint-interval <ms>",
      "milliseconds between checkpoints",
      positiveInt("--checkpoint-interval"),
      1000,
    )
    .addOption(
      new Option("--progress <mode>", "progress display (auto: a bar on a terminal, plain lines otherwise)")
        .choices(["auto", "bar", "lines", "off"])
        .default("auto"),
    )
    .addOption(modelsDirOption())
    .addOption(remoteOption("score through a running cluster's batches API instead of in-process (its base URL)"))
    .addOption(apiKeyOption())
    .option("--concurrency <n>", "with --remote: batches in flight at once", positiveInt("--concurrency"), 4)
    .option(
      "--rows-per-item <n>",
      "with --remote: CSV rows one batch item (job) carries, up to the model's maxRowsPerJob; an item that fails is run again row by row",
      positiveInt("--rows-per-item"),
      DEFAULT_ROWS_PER_ITEM,
    )
    .addOption(
      new Option(
        "--cache <mode>",
        "with --remote: the cluster's result cache; use: rows it holds come from it, bypass: every row runs and refreshes it, off: every row runs and it is left alone",
      )
        .choices(["use", "bypass", "off"])
        .default("use"),
    )
    .option("--no-cache", "with --remote: the same as --cache bypass")
    .addHelpText("after", HELP)
    .action(async (input: string, flags: ScoreFlags) => {
      if (flags.remote && !flags.apiKey) throw new UsageError("--remote needs --api-key (or INFERLINE_API_KEY)");
      if (flags.resume && flags.force) throw new UsageError("--resume and --force exclude each other");
      const env = parseEnv(InferenceEnv);
      const options: ScoreOptions = {
        input,
        model: flags.model,
        ...(flags.modelVersion ? { version: flags.modelVersion } : {}),
        modelsDir: flags.modelsDir,
        ...(flags.out ? { out: flags.out } : {}),
        format: flags.format,
        ...(flags.inputFormat ? { inputFormat: flags.inputFormat } : {}),
        resume: flags.resume,
        force: flags.force,
        threads: flags.threads,
        chunkSize: flags.chunkSize,
        checkpointIntervalMs: flags.checkpointInterval,
        progress: flags.progress,
        ...(env.INFERENCE_ADAPTER_MODULES.length > 0 ? { adapterModules: env.INFERENCE_ADAPTER_MODULES } : {}),
        ...(env.INFERENCE_TIMEOUT_MS !== undefined ? { timeoutMs: env.INFERENCE_TIMEOUT_MS } : {}),
      };
      process.exitCode = EXIT.failed; // until the run says otherwise: a run that never finishes must not look like success
      const remote = flags.remote
        ? {
            url: flags.remote,
            apiKey: flags.apiKey!,
            concurrency: flags.concurrency,
            cache: cacheMode(flags.cache),
            rowsPerItem: flags.rowsPerItem,
          }
        : undefined;
      process.exitCode = await runScore(
        options,
        remote ? (model, settings) => new RemoteScorer(model, settings, remote) : undefined,
      );
    });
}

/** The batches' `cache` for --cache (absent: use the cache). */
function cacheMode(flag: ScoreFlags["cache"]): CacheMode | undefined {
  if (flag === false) return "bypass";
  return flag === "use" ? undefined : flag;
}
