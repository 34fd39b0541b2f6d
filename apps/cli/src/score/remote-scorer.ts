import { InferlineClient, InferlineError, type BatchResultLine, type BatchHeaderInput } from "@inferline/client";
import type { CacheMode, FlatTensor, ResolvedModel } from "@inferline/contracts";
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

export interface RemoteOptions {
  url: string;
  apiKey: string;
  /** Batches in flight at once (the CLI's --concurrency, default 4, states the default). */
  concurrency: number;
  /** --cache bypass (or --no-cache): every row runs and refreshes the cluster's result cache; --cache off: every row runs and the cache is left alone. Absent: rows the cache holds come from it. */
  cache?: CacheMode;
}

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

  constructor(
    private readonly model: ResolvedModel,
    private readonly settings: ScoreSettings,
    private readonly options: RemoteOptions,
  ) {
    this.parallelism = options.concurrency;
    this.layout = modelLayout(model.manifest, model.version);
    this.formatter = new ResultFormatter(this.layout, model.manifest, settings.outputFormat);
    this.base = options.url.replace(/\/+$/, "");
    this.client = new InferlineClient({ baseUrl: this.base, apiKey: options.apiKey, retries: RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS });
  }

  async start(): Promise<void> {
    const contracts = await import("@inferline/contracts");
    this.parser = new ChunkParser(this.layout, this.model.manifest, this.settings, { Tensor: contracts.Tensor, validateInputs: contracts.validateInputs });
    const probe = new InferlineClient({ baseUrl: this.base, apiKey: this.options.apiKey, retries: PROBE_RETRIES });
    await probe.models.get(this.model.manifest.name).catch((err: Error) => {
      if (!(err instanceof InferlineError)) throw new UsageError(`cannot reach ${this.base}: ${err.message}`);
      if (err.status === 401) throw new UsageError(`${this.base} refused the API key (401)`);
      if (err.status === 404) throw new UsageError(`${this.base} does not serve model ${this.model.manifest.name}`);
      throw new UsageError(`${this.base} answered ${err.status} for the model: ${err.message}`);
    });
  }

  async score(chunk: RawChunk): Promise<ScoredChunk> {
    const parsed = this.parser!.parse(decoder.decode(chunk.bytes), chunk.startLine);
    const errors: RowError[] = [...parsed.errors];
    let text = "";
    let rows = 0;
    if (parsed.count > 0) {
      const lines = await this.runBatch(parsed, chunk.seq);
      const scored = await this.collect(parsed, lines, errors);
      text = scored.text;
      rows = scored.rows;
    }
    errors.sort((a, b) => a.line - b.line);
    return { seq: chunk.seq, out: encoder.encode(text), errors: encoder.encode(this.formatter.errors(errors)), rows, failures: errors.length };
  }

  /**
   * Submits the chunk's rows as one batch and returns its result lines in submission order. The
   * batch's Idempotency-Key names this run and chunk, so a resumed run (or a retried request) gets
   * the batch created before the interruption back instead of scoring its rows again.
   */
  private async runBatch(parsed: ParsedChunk, seq: number): Promise<AsyncIterable<BatchResultLine>> {
    // An array, sent as one NDJSON body: the client may replay it on a 429, a 503 or a lost connection.
    const items = Array.from({ length: parsed.count }, (_, i) => ({ inputs: this.rowInputs(parsed, i) }));
    const header: BatchHeaderInput = { model: this.model.manifest.name, version: this.model.version, priority: "low" };
    // Without it, rows scored before (same tenant, model version and inputs) come back from the
    // cluster's result cache, marked `cached` on their result lines; the output does not show it.
    if (this.options.cache) header.cache = this.options.cache;
    const idempotencyKey = this.settings.runId ? `inferline-score/${this.settings.runId}/${seq}` : undefined;
    const created = await this.client.batches.create(items, header, idempotencyKey ? { idempotencyKey } : {});
    // Long-poll: the API answers as soon as the batch's last item finishes.
    await this.client.batches.wait(created.id);
    return this.client.batches.results(created.id);
  }

  /** Row i's tensors: a slice of each dense column, or the tensors a JSONL line gave. */
  private rowInputs(parsed: ParsedChunk, i: number): FlatTensor[] {
    if (parsed.items) return parsed.items[i]!;
    return this.layout.inputs.map((input, k) => ({
      name: input.name,
      datatype: input.datatype,
      shape: [1, ...input.rowShape],
      data: Array.from(parsed.columns[k]!.subarray(i * input.rowSize, (i + 1) * input.rowSize) as ArrayLike<number | bigint>, Number),
    }));
  }

  private async collect(parsed: ParsedChunk, results: AsyncIterable<BatchResultLine>, errors: RowError[]): Promise<{ text: string; rows: number }> {
    const lines: number[] = [];
    const ids: unknown[] = [];
    const blocks = new Map<string, { values: Array<number | boolean>; rowSize: number }>();
    for await (const r of results) {
      const id = parsed.ids?.[r.index];
      // Failed, canceled or expired (not started within its queue deadline): the row goes to the
      // errors file with its item's error, e.g. "deadline_exceeded: …".
      if (r.status !== "succeeded" || !r.result) {
        errors.push({ line: parsed.lines[r.index]!, ...(id !== undefined ? { id } : {}), error: r.error ? `${r.error.code}: ${r.error.message}` : `job ${r.status}` });
        continue;
      }
      lines.push(parsed.lines[r.index]!);
      ids.push(id);
      for (const o of this.layout.outputs) {
        const data = (r.result.outputs.find((t) => t.name === o.name)?.data ?? []) as Array<number | boolean>;
        let block = blocks.get(o.name);
        if (!block) blocks.set(o.name, (block = { values: [], rowSize: data.length }));
        for (const v of data) block.values.push(v);
      }
    }
    // JSON carries float32 outputs as doubles; back in a Float32Array they format exactly as local scoring formats them.
    const fp32 = new Set(this.model.manifest.outputs.filter((o) => o.datatype === "FP32").map((o) => o.name));
    const outputs: OutputBlock[] = [...blocks].map(([name, b]) => ({ name, data: fp32.has(name) ? Float32Array.from(b.values as number[]) : b.values, rowSize: b.rowSize }));
    return { text: this.formatter.rows(lines.length, lines, ids.some((i) => i !== undefined) ? ids : null, outputs), rows: lines.length };
  }

  async close(): Promise<void> {}
}
