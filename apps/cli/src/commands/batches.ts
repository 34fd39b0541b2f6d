import fs from "node:fs";
import readline from "node:readline";
import { Option, type Command } from "commander";
import {
  isFinishedBatch,
  type BatchItemInput,
  type BatchResultLine,
  type BatchStatus,
  type BatchView,
} from "@inferline/client";
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

const BATCH_STATUSES: BatchStatus[] = ["queued", "running", "completed", "canceled"];
/** The most batches one GET /v1/batches answers. */
const MAX_PAGE = 100;

const BATCH_COLUMNS: ReadonlyArray<Column<BatchView>> = [
  { header: "id", value: (b) => b.id },
  { header: "status", value: (b) => b.status },
  { header: "model", value: (b) => b.model },
  { header: "version", value: (b) => b.version },
  { header: "total", value: (b) => b.total },
  { header: "succeeded", value: (b) => b.counts.succeeded },
  { header: "failed", value: (b) => b.counts.failed + b.counts.expired + b.counts.canceled },
  { header: "created", value: (b) => b.createdAt },
];

const RESULT_COLUMNS: ReadonlyArray<Column<BatchResultLine>> = [
  { header: "index", value: (r) => r.index },
  { header: "custom id", value: (r) => r.customId },
  { header: "job", value: (r) => r.jobId },
  { header: "status", value: (r) => r.status },
  {
    header: "result",
    value: (r) => r.error?.code ?? r.result?.classifications?.[0]?.label ?? (r.result ? "(see --json)" : undefined),
  },
];

interface Flags extends RemoteFlags {
  json?: boolean;
  wait?: number | true;
}

interface CreateFlags extends Flags {
  model: string;
  modelVersion?: string;
  priority?: "high" | "normal" | "low";
  cache?: "bypass" | "off";
  idempotencyKey?: string;
  cancelAfter?: string;
}

/** `inferline batches create|list|get|results|cancel`: many items of one model on a cluster, through @inferline/client. */
export function registerBatches(program: Command): void {
  const batches = program.command("batches").description("batches on a cluster: create, list, get, results, cancel");

  remoteCommand(batches.command("create"))
    .description(
      "create a batch from a JSONL file, one item {customId?, inputs} a line, streamed; print it (with --wait, when it ended)",
    )
    .argument("<file>", "the items, one JSON object a line (- for standard input)")
    .requiredOption("-m, --model <name>", "model name")
    .option("--model-version <version>", "model version (default: the model's default)")
    .addOption(new Option("--priority <priority>", "queue priority (default low)").choices(["high", "normal", "low"]))
    .addOption(cacheOption())
    .option(
      "--idempotency-key <key>",
      "the same key and items within 24 h answer the first batch (send them again after a lost answer)",
    )
    .option("--cancel-after <duration>", "cancel the items not ended within this long (90s, 5m, 1h30m)")
    .addOption(waitOption())
    .action(async (file: string, flags: CreateFlags) => {
      const client = clientOf(flags);
      const header = { model: flags.model, version: flags.modelVersion, priority: flags.priority, cache: flags.cache };
      const items = new ItemFile(file);
      const batch = await client.batches
        .create(items, header, { idempotencyKey: flags.idempotencyKey, cancelAfter: flags.cancelAfter })
        .catch((err: unknown) => {
          // A line that failed to parse stopped the upload: that, not the cut request, is what to say.
          throw items.failure ?? err;
        });
      await printWaited(flags, batch, (timeoutSeconds) => client.batches.wait(batch.id, { timeoutSeconds }));
    });

  pageOptions(remoteCommand(batches.command("list")), "batches")
    .description("list batches, newest first")
    .addOption(new Option("--status <status>", "only batches in this status").choices(BATCH_STATUSES))
    .option("--model <name>", "only batches of this model")
    .action(async (flags: Flags & { status?: BatchStatus; model?: string; limit: number; cursor?: string }) => {
      const client = clientOf(flags);
      const { items, nextCursor } = await collectPages(
        async (cursor, limit) => {
          const page = await client.batches.page({
            status: flags.status,
            model: flags.model,
            cursor,
            limit: Math.min(limit, MAX_PAGE),
          });
          return { items: page.batches, nextCursor: page.nextCursor };
        },
        flags.limit,
        flags.cursor,
      );
      printRecords(items, BATCH_COLUMNS, flags.json);
      hintMore("inferline batches list", nextCursor);
    });

  remoteCommand(batches.command("get"))
    .description("print a batch and its items' counts (with --wait, once it has ended)")
    .argument("<id>", "the batch's id")
    .addOption(waitOption())
    .action(async (id: string, flags: Flags) => {
      const client = clientOf(flags);
      await printWaited(flags, await client.batches.get(id), (timeoutSeconds) =>
        client.batches.wait(id, { timeoutSeconds }),
      );
    });

  remoteCommand(batches.command("results"))
    .description(
      "print a batch's result lines in submission order (with --json: one JSON object a line, as the API streams them)",
    )
    .argument("<id>", "the batch's id")
    .action(async (id: string, flags: Flags) => {
      const lines = clientOf(flags).batches.results(id);
      if (flags.json) {
        for await (const line of lines) process.stdout.write(`${JSON.stringify(line)}\n`);
        return;
      }
      const all: BatchResultLine[] = [];
      for await (const line of lines) all.push(line);
      printRecords(all, RESULT_COLUMNS, false);
    });

  remoteCommand(batches.command("cancel"))
    .description("cancel every item of a batch not yet ended, and print the batch")
    .argument("<id>", "the batch's id")
    .action(async (id: string, flags: Flags) => {
      printRecords(await clientOf(flags).batches.cancel(id), BATCH_COLUMNS, flags.json);
    });
}

/** Prints the batch, after waiting for it with --wait: exit 0 when every item succeeded, 1 when one did not. */
async function printWaited(
  flags: Flags,
  batch: BatchView,
  wait: (timeoutSeconds: number | undefined) => Promise<BatchView>,
): Promise<void> {
  const shown = flags.wait === undefined || isFinishedBatch(batch) ? batch : await wait(waitSeconds(flags.wait));
  printRecords(shown, BATCH_COLUMNS, flags.json);
  if (flags.wait === undefined) return;
  process.exitCode = !isFinishedBatch(shown)
    ? EXIT.waitEnded
    : shown.counts.succeeded === shown.total
      ? EXIT.ok
      : EXIT.failed;
}

/**
 * The items of a JSONL file, parsed line by line as the upload reads them. A line that is not
 * JSON ends the items and is kept as `failure`, named by its line number.
 */
class ItemFile implements AsyncIterable<BatchItemInput> {
  failure: UsageError | undefined;

  constructor(private readonly file: string) {
    if (file !== "-" && !fs.existsSync(file)) throw new UsageError(`${file} does not exist`);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<BatchItemInput> {
    const input = this.file === "-" ? process.stdin : fs.createReadStream(this.file);
    let line = 0;
    for await (const text of readline.createInterface({ input, crlfDelay: Infinity })) {
      line++;
      if (!text.trim()) continue;
      try {
        yield JSON.parse(text) as BatchItemInput;
      } catch (err) {
        const where = this.file === "-" ? "standard input" : this.file;
        this.failure = new UsageError(`${where} line ${line} is not JSON: ${(err as Error).message}`);
        throw this.failure;
      }
    }
  }
}
