import fs from "node:fs";
import { InvalidArgumentError, Option, type Command } from "commander";
import { isTerminalJob, type JobStatus, type JobView, type Tensor } from "@inferline/client";
import { clientOf, type RemoteFlags } from "../cli-options.ts";
import { EXIT } from "../exit-codes.ts";
import { printRecords, type Column } from "../output.ts";
import { UsageError } from "../score/types.ts";
import {
  cacheOption,
  collectPages,
  hintMore,
  pageOptions,
  remoteCommand,
  waitOption,
  waitSeconds,
} from "./remote-work.ts";

const JOB_STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "canceled", "expired"];
const INPUTS_EXAMPLE = '[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]';
/** The most jobs one GET /v1/jobs answers. */
const MAX_PAGE = 500;

/** A job as the tables show it: the top label of a classifier's result, or the error's code. */
export const JOB_COLUMNS: ReadonlyArray<Column<JobView>> = [
  { header: "id", value: (j) => j.id },
  { header: "status", value: (j) => j.status },
  { header: "model", value: (j) => j.model },
  { header: "version", value: (j) => j.version },
  { header: "created", value: (j) => j.createdAt },
  { header: "completed", value: (j) => j.completedAt },
  {
    header: "result",
    value: (j) => j.error?.code ?? j.result?.classifications?.[0]?.label ?? (j.result ? "(see --json)" : undefined),
  },
];

interface Flags extends RemoteFlags {
  json?: boolean;
  wait?: number | true;
}

interface SubmitFlags extends Flags {
  model: string;
  modelVersion?: string;
  inputs?: string;
  inputsFile?: string;
  priority?: "high" | "normal" | "low";
  metadata?: Record<string, string>;
  idempotencyKey?: string;
  cancelAfter?: string;
  cache?: "bypass" | "off";
}

/** `inferline jobs submit|get|list|cancel`: single jobs on a cluster, through @inferline/client. */
export function registerJobs(program: Command): void {
  const jobs = program.command("jobs").description("jobs on a cluster: submit, get, list, cancel");

  remoteCommand(jobs.command("submit"))
    .description("submit a job and print it (with --wait, once it has ended)")
    .requiredOption("-m, --model <name>", "model name")
    .option("--model-version <version>", "model version (default: the model's default)")
    .option("--inputs <json>", `the inputs: a JSON array of v2 tensors, e.g. ${INPUTS_EXAMPLE}`)
    .option(
      "--inputs-file <file>",
      "read the inputs from a file (- for standard input): the same array, or an object with `inputs`",
    )
    .addOption(new Option("--priority <priority>", "queue priority").choices(["high", "normal", "low"]))
    .option("--metadata <key=value>", "metadata shown on the job (repeatable)", keyValue)
    .addOption(cacheOption())
    .option("--idempotency-key <key>", "the same key and body within 24 h answer the first job")
    .option("--cancel-after <duration>", "cancel the job unless it ended within this long (90s, 5m, 1h30m)")
    .addOption(waitOption())
    .action(async (flags: SubmitFlags) => {
      const client = clientOf(flags);
      const inputs = readInputs(flags);
      const { model, modelVersion: version, priority, cache, metadata, idempotencyKey, cancelAfter } = flags;
      const job = await client.jobs.create(
        { model, inputs, version, priority, cache, metadata },
        { idempotencyKey, cancelAfter },
      );
      await printWaited(flags, job, (timeoutSeconds) => client.jobs.wait(job.id, { timeoutSeconds }));
    });

  remoteCommand(jobs.command("get"))
    .description("print a job (with --wait, once it has ended)")
    .argument("<id>", "the job's id")
    .addOption(waitOption())
    .action(async (id: string, flags: Flags) => {
      const client = clientOf(flags);
      await printWaited(flags, await client.jobs.get(id), (timeoutSeconds) => client.jobs.wait(id, { timeoutSeconds }));
    });

  pageOptions(remoteCommand(jobs.command("list")), "jobs")
    .description("list jobs, newest first (with --batch: that batch's items)")
    .addOption(new Option("--status <status>", "only jobs in this status").choices(JOB_STATUSES))
    .option("--model <name>", "only jobs of this model")
    .option("--batch <id>", "only the items of this batch")
    .action(
      async (flags: Flags & { status?: JobStatus; model?: string; batch?: string; limit: number; cursor?: string }) => {
        const client = clientOf(flags);
        const filter = { status: flags.status, model: flags.model, batchId: flags.batch };
        const { items, nextCursor } = await collectPages(
          async (cursor, limit) => {
            const page = await client.jobs.page({ ...filter, cursor, limit: Math.min(limit, MAX_PAGE) });
            return { items: page.jobs, nextCursor: page.nextCursor };
          },
          flags.limit,
          flags.cursor,
        );
        printRecords(items, JOB_COLUMNS, flags.json);
        hintMore("inferline jobs list", nextCursor);
      },
    );

  remoteCommand(jobs.command("cancel"))
    .description("cancel a queued or running job and print it")
    .argument("<id>", "the job's id")
    .action(async (id: string, flags: Flags) => {
      printRecords(await clientOf(flags).jobs.cancel(id), JOB_COLUMNS, flags.json);
    });
}

/** Prints the job, after waiting for it with --wait; the exit code says how the wait ended. */
async function printWaited(
  flags: Flags,
  job: JobView,
  wait: (timeoutSeconds: number | undefined) => Promise<JobView>,
): Promise<void> {
  const shown = flags.wait === undefined || isTerminalJob(job) ? job : await wait(waitSeconds(flags.wait));
  printRecords(shown, JOB_COLUMNS, flags.json);
  if (flags.wait === undefined) return;
  process.exitCode = !isTerminalJob(shown) ? EXIT.waitEnded : shown.status === "succeeded" ? EXIT.ok : EXIT.failed;
}

/** The job's inputs from --inputs or --inputs-file: a JSON array of tensors, or an object holding `inputs`. */
function readInputs(flags: SubmitFlags): Tensor[] {
  if ((flags.inputs === undefined) === (flags.inputsFile === undefined)) {
    throw new UsageError("give the inputs with one of --inputs or --inputs-file");
  }
  const text = flags.inputs ?? fs.readFileSync(flags.inputsFile === "-" ? 0 : flags.inputsFile!, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `${flags.inputs === undefined ? flags.inputsFile : "--inputs"} is not JSON: ${(err as Error).message}`,
    );
  }
  const inputs = Array.isArray(parsed) ? parsed : (parsed as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs))
    throw new UsageError("the inputs must be a JSON array of v2 tensors, or an object with `inputs`");
  return inputs as Tensor[];
}

/** `--metadata key=value`, repeatable, gathered into one object. */
function keyValue(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = value.indexOf("=");
  if (at < 1) throw new InvalidArgumentError("expected key=value");
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}
