// The SDK's 404 by an alias of its own: @inferline/contracts (loaded here too) has a NotFoundError of the server side.
import {
  AuthenticationError,
  InferlineAPIError,
  InferlineClient,
  NotFoundError as ApiNotFoundError,
  type BatchResultLine,
  type BatchHeaderInput,
} from "@inferline/client";
import { EXIT, ExitError, exitCodeOf } from "../exit-codes.ts";
import type { CacheMode, FlatTensor, TensorElement } from "@inferline/contracts";
import type { ResolvedModel } from "@inferline/runtime";
import { jsonElements } from "@inferline/inference";
import { ChunkParser, type ParsedChunk, type RowError } from "./chunk-parser.ts";
import { ResultFormatter, type OutputBlock } from "./formatter.ts";
import { modelLayout, type ModelLayout } from "./model-layout.ts";
import { UsageError, type RawChunk, type ScoredChunk, type ScoreSettings, type Scorer } from "./types.ts";

/**
 * Times a request is sent again while the cluster answers 429 or 503 (nothing was created) or
 * the connection fails, after the Retry-After it gives (up to 30 s) or a jittered backoff.
 */
const RETRIES = 20;
const MAX_RETRY_DELAY_MS = 30_000;
/** The start-up check retries little: an unreachable cluster is a usage error, reported soon. */
const PROBE_RETRIES = 2;
/**
 * Rows of a CSV (or feature-JSONL) chunk one batch item carries, by default. Every item is a job
 * with its own row in PostgreSQL, queue work, result line and parse on both ends, a cost per item
 * that 32 rows an item share (bench/score-remote.ts measures the CPU per row).
 */
export const DEFAULT_ROWS_PER_ITEM = 32;

export interface RemoteOptions {
  url: string;
  apiKey: string;
  /** Batches in flight at once (the CLI's --concurrency, default 4, states the default). */
  concurrency: number;
  /** --cache bypass (or --no-cache): every row runs and refreshes the cluster's result cache; --cache off: every row runs and the cache is left alone. Absent: rows the cache holds come from it. */
  cache?: CacheMode;
  /**
   * Rows one batch item carries (--rows-per-item, default DEFAULT_ROWS_PER_ITEM), capped by the
   * model's maxRowsPerJob on the cluster. Rows given as v2 tensors (JSONL `inputs`) go one an item.
   * An item that fails is run again row by row, so only the rows at fault fail.
   */
  rowsPerItem?: number;
}

/** Rows [from, to) of a parsed chunk, sent as one batch item. */
interface RowGroup {
  from: number;
  to: number;
}

/** What became of a group: its outputs by name (rows in order), or the result line that failed it. */
type GroupOutcome = { outputs: Map<string, ArrayLike<TensorElement>> } | { failed: BatchResultLine };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Scores chunks through a cluster: each chunk's parsed rows become one batch (`POST /v1/batches`
 * as NDJSON), whose results are read back in submission order and formatted exactly as local
 * scoring formats them. Parsing and formatting stay here, so both modes share the file handling,
 * row errors, ordering and resume.
 */
export class RemoteScorer implements Scorer {
  readonly parallelism: number;
  private readonly layout: ModelLayout;
  private readonly formatter: ResultFormatter;
  private parser: ChunkParser | undefined;
  private readonly base: string;
  private readonly client: InferlineClient;
  private rowsPerItem = 1;

  constructor(
    private readonly model: ResolvedModel,
    private readonly settings: ScoreSettings,
    private readonly options: RemoteOptions,
  ) {
    this.parallelism = options.concurrency;
    this.layout = modelLayout(model.manifest, model.version);
    this.formatter = new ResultFormatter(this.layout, model.manifest, settings.outputFormat);
    this.base = options.url.replace(/\/+$/, "");
    this.client = new InferlineClient({
      baseUrl: this.base,
      apiKey: options.apiKey,
      maxRetries: RETRIES,
      maxRetryDelayMs: MAX_RETRY_DELAY_MS,
    });
  }

  async start(): Promise<void> {
    const contracts = await import("@inferline/contracts");
    this.parser = new ChunkParser(this.layout, this.model.manifest, this.settings, {
      Tensor: contracts.Tensor,
      validateInputs: contracts.validateInputs,
    });
    const probe = new InferlineClient({ baseUrl: this.base, apiKey: this.options.apiKey, maxRetries: PROBE_RETRIES });
    const served = await probe.models.get(this.model.manifest.name).catch((err: Error) => {
      if (!(err instanceof InferlineAPIError)) throw err;
      if (err.status === undefined)
        throw new ExitError(`cannot reach ${this.base}: ${err.message}`, EXIT.unavailable, { cause: err });
      if (err instanceof AuthenticationError)
        throw new ExitError(`${this.base} refused the API key (${err.status})`, EXIT.auth, { cause: err });
      if (err instanceof ApiNotFoundError)
        throw new UsageError(`${this.base} does not serve model ${this.model.manifest.name}`);
      throw new ExitError(`${this.base} answered ${err.status} for the model: ${err.message}`, exitCodeOf(err), {
        cause: err,
      });
    });
    this.rowsPerItem = Math.max(
      1,
      Math.min(this.options.rowsPerItem ?? DEFAULT_ROWS_PER_ITEM, served.maxRowsPerJob ?? 1),
    );
  }

  async score(chunk: RawChunk): Promise<ScoredChunk> {
    const parsed = this.parser!.parse(decoder.decode(chunk.bytes), chunk.startLine);
    const errors: RowError[] = [...parsed.errors];
    let text = "";
    let rows = 0;
    if (parsed.count > 0) {
      const groups = this.groupsOf(parsed);
      const outcomes = await this.runGroups(parsed, groups, `${chunk.seq}`);
      const retried = await this.retryRowByRow(parsed, groups, outcomes, chunk.seq);
      const scored = this.format(parsed, groups, outcomes, retried, errors);
      text = scored.text;
      rows = scored.rows;
    }
    errors.sort((a, b) => a.line - b.line);
    return {
      seq: chunk.seq,
      out: encoder.encode(text),
      errors: encoder.encode(this.formatter.errors(errors)),
      rows,
      failures: errors.length,
    };
  }

  /** The chunk's rows cut into batch items: rowsPerItem consecutive dense rows, or one row each. */
  private groupsOf(parsed: ParsedChunk): RowGroup[] {
    const size = parsed.items ? 1 : this.rowsPerItem;
    const groups: RowGroup[] = [];
    for (let from = 0; from < parsed.count; from += size)
      groups.push({ from, to: Math.min(parsed.count, from + size) });
    return groups;
  }

  /**
   * Submits the groups as one batch and returns each group's outcome. The batch's
   * Idempotency-Key names this run, chunk and grouping (`key`), so a resumed run (or a retried
   * request) gets the batch created before the interruption back instead of scoring its rows again.
   */
  private async runGroups(parsed: ParsedChunk, groups: RowGroup[], key: string): Promise<GroupOutcome[]> {
    // An array, sent as one NDJSON body: the client may replay it on a 429, a 503 or a lost connection.
    const items = groups.map((g) => ({ inputs: this.groupInputs(parsed, g) }));
    const header: BatchHeaderInput = { model: this.model.manifest.name, version: this.model.version, priority: "low" };
    // Without it, rows scored before (same tenant, model version and inputs) come back from the
    // cluster's result cache, marked `cached` on their result lines; the output does not show it.
    if (this.options.cache) header.cache = this.options.cache;
    const grouping = this.rowsPerItem === 1 ? "" : `/rows-${this.rowsPerItem}`;
    const idempotencyKey = this.settings.runId ? `inferline-score/${this.settings.runId}/${key}${grouping}` : undefined;
    const created = await this.client.batches.create(items, header, idempotencyKey ? { idempotencyKey } : {});
    // Long-poll: the API answers as soon as the batch's last item finishes.
    await this.client.batches.wait(created.id);
    const outcomes = new Array<GroupOutcome>(groups.length);
    for await (const r of this.client.batches.results(created.id)) {
      outcomes[r.index] =
        r.status === "succeeded" && r.result
          ? { outputs: new Map(r.result.outputs.map((t) => [t.name, t.data])) }
          : { failed: r };
    }
    return outcomes;
  }

  /**
   * Runs the rows of failed multi-row items again, one row an item, so that one row the model
   * rejects fails alone (as local scoring splits a failed run). Items that expired or were
   * canceled are not retried: that happened to every row alike. Returns the rows' outcomes.
   */
  private async retryRowByRow(
    parsed: ParsedChunk,
    groups: RowGroup[],
    outcomes: GroupOutcome[],
    seq: number,
  ): Promise<Map<number, GroupOutcome>> {
    const rows: RowGroup[] = [];
    groups.forEach((g, i) => {
      const o = outcomes[i];
      if (g.to - g.from > 1 && o && "failed" in o && o.failed.status === "failed")
        for (let r = g.from; r < g.to; r++) rows.push({ from: r, to: r + 1 });
    });
    const retried = new Map<number, GroupOutcome>();
    if (rows.length === 0) return retried;
    const single = await this.runGroups(parsed, rows, `${seq}/rows`);
    rows.forEach((r, i) => retried.set(r.from, single[i]!));
    return retried;
  }

  /** Group g's tensors: rows [from, to) of each dense column, or the tensors a JSONL line gave. */
  private groupInputs(parsed: ParsedChunk, g: RowGroup): FlatTensor[] {
    if (parsed.items) return parsed.items[g.from]!;
    return this.layout.inputs.map((input, k) => ({
      name: input.name,
      datatype: input.datatype,
      shape: [g.to - g.from, ...input.rowShape],
      data: jsonElements(input.datatype, parsed.columns[k]!, g.from * input.rowSize, (g.to - g.from) * input.rowSize),
    }));
  }

  /** Formats the scored rows in input order; failed rows go to `errors` with their item's error. */
  private format(
    parsed: ParsedChunk,
    groups: RowGroup[],
    outcomes: GroupOutcome[],
    retried: Map<number, GroupOutcome>,
    errors: RowError[],
  ): { text: string; rows: number } {
    const lines: number[] = [];
    const ids: unknown[] = [];
    const blocks = new Map<string, { values: TensorElement[]; rowSize: number }>();
    const take = (from: number, to: number, outcome: GroupOutcome | undefined): void => {
      if (!outcome || "failed" in outcome) {
        // Failed, canceled or expired (not started within its queue deadline): the rows go to the
        // errors file with their item's error, e.g. "deadline_exceeded: …".
        const r = outcome?.failed;
        const error = r?.error
          ? `${r.error.code}: ${r.error.message}`
          : `job ${r?.status ?? "missing from the results"}`;
        for (let i = from; i < to; i++) {
          const id = parsed.ids?.[i];
          errors.push({ line: parsed.lines[i]!, ...(id !== undefined ? { id } : {}), error });
        }
        return;
      }
      for (let i = from; i < to; i++) {
        lines.push(parsed.lines[i]!);
        ids.push(parsed.ids?.[i]);
      }
      for (const o of this.layout.outputs) {
        const data = outcome.outputs.get(o.name) ?? [];
        let block = blocks.get(o.name);
        if (!block) blocks.set(o.name, (block = { values: [], rowSize: data.length / (to - from) }));
        for (let k = 0; k < data.length; k++) block.values.push(data[k]!);
      }
    };
    groups.forEach((g, i) => {
      if (!retried.has(g.from)) return take(g.from, g.to, outcomes[i]);
      for (let r = g.from; r < g.to; r++) take(r, r + 1, retried.get(r));
    });
    // The formatter writes each output by its datatype, so JSON's values format as local scoring's typed arrays do.
    const outputs: OutputBlock[] = [...blocks].map(([name, b]) => ({ name, data: b.values, rowSize: b.rowSize }));
    return {
      text: this.formatter.rows(lines.length, lines, ids.some((i) => i !== undefined) ? ids : null, outputs),
      rows: lines.length,
    };
  }

  async close(): Promise<void> {}
}
