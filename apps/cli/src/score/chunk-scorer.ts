import type { FlatTensor, TensorElement } from "@inferline/contracts";
import type { DenseArray, LoadedModel } from "@inferline/inference";
import { ChunkParser, type ParsedChunk, type RowError, type TensorCheck } from "./chunk-parser.ts";
import { ResultFormatter, type OutputBlock } from "./formatter.ts";
import { fullGc } from "./heap.ts";
import { modelLayout, type ModelLayout } from "./model-layout.ts";
import type { ScoreSettings } from "./types.ts";

/** A chunk's formatted results (what a pool thread sends back; both buffers are transferred). */
export interface ChunkResult {
  out: Uint8Array;
  errors: Uint8Array;
  rows: number;
  failures: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Input bytes scored between two full garbage collections (see heap.ts). */
const GC_EVERY_BYTES = 2 * 1024 * 1024;

/** Characters of a chunk parsed, run and formatted at a time (about 1,400 iris rows). */
const PART_CHARS = 32 * 1024;

/** A growable UTF-8 byte buffer that result text is encoded into as it is made. */
class ByteSink {
  private bytes: Uint8Array;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(1 << 12, capacity));
  }
  length = 0;

  write(text: string): void {
    for (;;) {
      const r = encoder.encodeInto(text, this.bytes.subarray(this.length));
      if (r.read === text.length) {
        this.length += r.written;
        return;
      }
      this.length += r.written;
      text = text.slice(r.read);
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + text.length * 3));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
  }

  /** The bytes written: a view of a buffer of their own (the whole buffer is transferred, not copied). */
  take(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

/**
 * Parse → run → format for one chunk, in the pool thread that holds the model (see chunk-task.ts).
 * Dense models run each part of the chunk as typed arrays straight on the session
 * (LoadedModel.runDense: a failing run is split down to the rows at fault); other models run
 * their rows as items through the model's adapter (LoadedModel.run: per-item fallback).
 */
export class ChunkScorer {
  private sinceGc = 0;

  private constructor(
    private readonly layout: ModelLayout,
    private readonly parser: ChunkParser,
    private readonly formatter: ResultFormatter,
    private readonly model: LoadedModel,
    private readonly inputFormat: ScoreSettings["inputFormat"],
  ) {}

  /** The contracts package's tensor checks (zod) are wired in only for JSONL input, which needs them. */
  static async create(model: LoadedModel, settings: ScoreSettings): Promise<ChunkScorer> {
    const { manifest, version } = model.model;
    const layout = modelLayout(manifest, version);
    let tensors: TensorCheck | undefined;
    if (settings.inputFormat === "jsonl") {
      const contracts = await import("@inferline/contracts");
      tensors = { Tensor: contracts.Tensor, validateInputs: contracts.validateInputs };
    }
    const parser = new ChunkParser(layout, manifest, settings, tensors);
    const formatter = new ResultFormatter(layout, manifest, settings.outputFormat);
    return new ChunkScorer(layout, parser, formatter, model, settings.inputFormat);
  }

  /**
   * Scores a chunk in parts of about PART_CHARS characters (cut at line breaks; a CSV chunk with
   * quotes stays whole): every per-row object of a part dies before the next part starts, so
   * almost nothing reaches V8's old generation and memory stays flat. The cuts depend only on the
   * chunk's text, so the output does too.
   */
  async score(bytes: Uint8Array, startLine: number): Promise<ChunkResult> {
    this.sinceGc += bytes.length;
    if (this.sinceGc >= GC_EVERY_BYTES) {
      this.sinceGc = 0;
      fullGc();
    }
    const text = decoder.decode(bytes);
    const splittable = this.inputFormat === "jsonl" || text.indexOf('"') === -1;
    const out = new ByteSink(bytes.length * 8); // iris JSONL output is about 6 times its CSV input
    const errors: RowError[] = [];
    let rows = 0;
    let line = startLine;
    for (let from = 0; from < text.length;) {
      const cut = splittable ? text.indexOf("\n", from + PART_CHARS) : -1;
      const to = cut === -1 ? text.length : cut + 1;
      const part = from === 0 && to === text.length ? text : text.slice(from, to);
      const parsed = this.parser.parse(part, line);
      const partErrors = parsed.errors;
      if (parsed.count > 0) {
        if (this.layout.dense) {
          rows += await this.runDense(parsed, partErrors, out);
        } else {
          const r = await this.runGeneric(parsed, partErrors);
          out.write(r.text);
          rows += r.rows;
        }
      }
      if (partErrors.length > 1) partErrors.sort((a, b) => a.line - b.line);
      for (const e of partErrors) errors.push(e);
      for (let at = part.indexOf("\n"); at !== -1; at = part.indexOf("\n", at + 1)) line++;
      from = to;
    }
    return { out: out.take(), errors: encoder.encode(this.formatter.errors(errors)), rows, failures: errors.length };
  }

  /** Runs the parsed rows as one dense run and formats each segment it comes back in; returns the rows scored. */
  private async runDense(p: ParsedChunk, errors: RowError[], out: ByteSink): Promise<number> {
    const columns: Record<string, DenseArray> = {};
    this.layout.inputs.forEach((input, k) => (columns[input.name] = p.columns[k]!));
    let rows = 0;
    for (const segment of await this.model.runDense(columns, p.count)) {
      const { from, to } = segment;
      if ("error" in segment) {
        errors.push({
          line: p.lines[from]!,
          ...(p.ids?.[from] !== undefined ? { id: p.ids[from] } : {}),
          error: `inference failed: ${segment.error.message.slice(0, 500)}`,
        });
        continue;
      }
      const blocks: OutputBlock[] = segment.outputs.map((o) => ({
        name: o.name,
        data: o.data,
        rowSize: o.rowShape.reduce((a, b) => a * b, 1),
      }));
      const whole = from === 0 && to === p.count;
      const lines = whole ? p.lines : p.lines.slice(from, to);
      const ids = p.ids ? (whole ? p.ids : p.ids.slice(from, to)) : null;
      out.write(this.formatter.rows(to - from, lines, ids, blocks));
      rows += to - from;
    }
    return rows;
  }

  private async runGeneric(p: ParsedChunk, errors: RowError[]): Promise<{ text: string; rows: number }> {
    const outcomes = await this.model.run(p.items!.map((inputs) => ({ inputs })));
    const lines: number[] = [];
    const ids: unknown[] = [];
    const perOutput = new Map<string, { values: TensorElement[]; rowSize: number }>();
    outcomes.forEach((outcome, i) => {
      const id = p.ids?.[i];
      if (!outcome.ok) {
        errors.push({
          line: p.lines[i]!,
          ...(id !== undefined ? { id } : {}),
          error: `${outcome.code}: ${outcome.message}`,
        });
        return;
      }
      lines.push(p.lines[i]!);
      ids.push(id);
      for (const o of this.layout.outputs) {
        const t = outcome.result.outputs.find((x: FlatTensor) => x.name === o.name);
        const data = t?.data ?? [];
        let acc = perOutput.get(o.name);
        if (!acc) perOutput.set(o.name, (acc = { values: [], rowSize: data.length }));
        for (const v of data) acc.values.push(v);
      }
    });
    const blocks: OutputBlock[] = [...perOutput].map(([name, acc]) => ({
      name,
      data: acc.values,
      rowSize: acc.rowSize,
    }));
    const hasIds = ids.some((id) => id !== undefined);
    return { text: this.formatter.rows(lines.length, lines, hasIds ? ids : null, blocks), rows: lines.length };
  }
}
