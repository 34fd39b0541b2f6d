import Papa from "papaparse";
import { canonicalElement, DATATYPES, elementExpectation } from "@inferline/contracts";
import type { Datatype, FlatTensor, ModelManifest, Tensor, TensorElement, validateInputs } from "@inferline/contracts";
import { denseArray, setDenseElement, type DenseArray, type NumericDatatype } from "@inferline/inference";
import type { ModelLayout, RowInput } from "./model-layout.ts";
import { splitCsvRecords } from "./record-bounds.ts";
import type { ParseSettings } from "./types.ts";

export interface RowError {
  line: number;
  id?: unknown;
  error: string;
}

/**
 * The rows of one chunk that parsed, in input order. Dense models get one stacked array per input
 * (`count * rowSize` elements, ready to become one tensor); other models get each row's tensors.
 */
export interface ParsedChunk {
  count: number;
  lines: number[];
  /** Per parsed row, its `id`/`customId` (undefined when it has none); null when no row has one. */
  ids: unknown[] | null;
  columns: DenseArray[];
  items: FlatTensor[][] | null;
  errors: RowError[];
}

/** A CSV cell as an element of `datatype` in canonical form; undefined when it is empty or not one. */
function cellElement(cell: string, datatype: Datatype): TensorElement | undefined {
  const text = cell.trim();
  if (text === "") return undefined;
  if (DATATYPES[datatype].kind === "bool") {
    const t = text.toLowerCase();
    return t === "true" || +t === 1 ? true : t === "false" || +t === 0 ? false : undefined;
  }
  // Digits are read as text first, so that an INT64 past 2^53 keeps every digit.
  return canonicalElement(datatype, text) ?? canonicalElement(datatype, +text);
}

/** Why a CSV cell is not an element of `datatype` (it is not empty). */
function cellFault(cell: string, datatype: Datatype): string {
  if (DATATYPES[datatype].kind === "bool") return "is not a boolean (0/1/true/false)";
  return Number.isNaN(+cell) ? "is not a number" : elementExpectation(datatype);
}

/** What JSONL lines of v2 tensors need from the contracts package (zod), loaded only for JSONL input. */
export interface TensorCheck {
  Tensor: typeof Tensor;
  validateInputs: typeof validateInputs;
}

/** Turns chunk text into rows for one model; pure (no I/O), so it runs in threads or on the main thread. */
export class ChunkParser {
  private readonly inputs: RowInput[];
  private readonly features: string[];

  constructor(
    private readonly layout: ModelLayout,
    private readonly manifest: ModelManifest,
    private readonly settings: ParseSettings,
    private readonly tensors?: TensorCheck,
  ) {
    this.inputs = layout.inputs;
    this.features = layout.inputs.flatMap((i) => i.features ?? []);
  }

  /** `startLine`: the 1-based input line of the text's first character. */
  parse(text: string, startLine: number): ParsedChunk {
    return this.settings.inputFormat === "csv" ? this.parseCsvChunk(text, startLine) : this.parseJsonl(text, startLine);
  }

  private newChunk(capacity: number): ParsedChunk {
    return {
      count: 0,
      lines: [],
      ids: null,
      columns: this.layout.dense
        ? this.inputs.map((i) => denseArray(i.datatype as NumericDatatype, capacity * i.rowSize))
        : [],
      items: this.layout.dense ? null : [],
      errors: [],
    };
  }

  private addId(chunk: ParsedChunk, id: unknown): void {
    if (id === undefined && chunk.ids === null) return;
    if (chunk.ids === null) chunk.ids = new Array<unknown>(chunk.count).fill(undefined);
    chunk.ids[chunk.count] = id;
  }

  // ---- CSV ----

  private parseCsvChunk(text: string, startLine: number): ParsedChunk {
    const newline = this.settings.csvNewline ?? "\n";
    // Without quotes a record is a line: record i is on line startLine + i (blank lines parse as
    // [""]; papaparse adds one [""] after a final line break).
    if (text.indexOf('"') === -1) {
      const records = Papa.parse<string[]>(text, { delimiter: ",", newline }).data;
      if (text.charCodeAt(text.length - 1) === 10) records.pop(); // the empty record after the final line break
      const chunk = this.newChunk(records.length);
      for (let i = 0; i < records.length; i++) this.csvRecord(chunk, records[i]!, startLine + i);
      return chunk;
    }
    // Quoted fields may span lines: split records quote-aware for their line numbers, then parse
    // them in one call; when the parser reports a fault, parse record by record to blame it alone.
    const split = splitCsvRecords(text);
    const chunk = this.newChunk(split.length);
    const whole = Papa.parse<string[]>(text, { delimiter: ",", newline });
    const records = whole.data;
    if (records.length > 0 && records[records.length - 1]!.length === 1 && records[records.length - 1]![0] === "")
      records.pop();
    if (whole.errors.length === 0 && records.length === split.length) {
      for (let i = 0; i < records.length; i++) this.csvRecord(chunk, records[i]!, startLine + split[i]!.line);
      return chunk;
    }
    for (const rec of split) {
      const one = Papa.parse<string[]>(rec.text, { delimiter: ",", newline });
      if (one.errors.length > 0) {
        chunk.errors.push({ line: startLine + rec.line, error: `malformed CSV: ${one.errors[0]!.message}` });
        continue;
      }
      if (one.data.length > 0) this.csvRecord(chunk, one.data[0]!, startLine + rec.line);
    }
    return chunk;
  }

  private csvRecord(chunk: ParsedChunk, record: string[], line: number): void {
    if (record.length === 1 && record[0]!.trim() === "") return; // a blank line
    const { csvColumns, csvIdColumn, csvHeader } = this.settings;
    const id = csvIdColumn !== undefined ? record[csvIdColumn] : undefined;
    const row = chunk.count;
    for (let k = 0; k < this.inputs.length; k++) {
      const input = this.inputs[k]!;
      const cols = csvColumns![k]!;
      const column = chunk.columns[k]!;
      const base = row * input.rowSize;
      for (let j = 0; j < cols.length; j++) {
        const cell = record[cols[j]!];
        const element = cell === undefined ? undefined : cellElement(cell, input.datatype);
        if (element === undefined) {
          const name = csvHeader?.[cols[j]!]?.trim() ?? input.features![j]!;
          const error =
            cell === undefined
              ? `column ${JSON.stringify(name)} is missing (the row has ${record.length} fields)`
              : cell.trim() === ""
                ? `column ${JSON.stringify(name)} is empty`
                : `column ${JSON.stringify(name)}: ${JSON.stringify(cell)} ${cellFault(cell, input.datatype)}`;
          chunk.errors.push({ line, ...(id !== undefined && id !== "" ? { id } : {}), error });
          return;
        }
        setDenseElement(input.datatype as NumericDatatype, column, base + j, element);
      }
    }
    this.addId(chunk, id === "" ? undefined : id);
    chunk.lines.push(line);
    chunk.count++;
  }

  // ---- JSONL ----

  private parseJsonl(text: string, startLine: number): ParsedChunk {
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    const chunk = this.newChunk(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!;
      const line = startLine + i;
      if (raw.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (err) {
        chunk.errors.push({ line, error: `malformed JSON: ${(err as Error).message}` });
        continue;
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        chunk.errors.push({ line, error: "each line must be a JSON object" });
        continue;
      }
      const obj = value as Record<string, unknown>;
      const id = obj.id ?? obj.customId;
      const error =
        obj.inputs !== undefined
          ? this.jsonTensors(chunk, obj.inputs)
          : this.jsonFeatures(chunk, obj.features !== undefined ? obj.features : obj);
      if (error) {
        chunk.errors.push({ line, ...(id !== undefined ? { id } : {}), error });
        continue;
      }
      this.addId(chunk, id);
      chunk.lines.push(line);
      chunk.count++;
    }
    return chunk;
  }

  /** Named features (an object) or, for a one-input model, a positional array. */
  private jsonFeatures(chunk: ParsedChunk, features: unknown): string | undefined {
    if (!this.layout.tabular)
      return `model ${this.layout.name} takes v2 tensors ({"inputs": [...]}), not named features: ${this.layout.notTabularReason}`;
    const row = chunk.count;
    if (Array.isArray(features)) {
      const input = this.inputs[0]!;
      if (this.inputs.length !== 1 || features.length !== input.rowSize)
        return `"features" as an array must hold ${input.rowSize} numbers (${input.features!.join(", ")})`;
      for (let j = 0; j < features.length; j++) {
        const fault = this.jsonValue(chunk.columns[0]!, row * input.rowSize + j, input.datatype, features[j]);
        if (fault) return `feature ${JSON.stringify(input.features![j])} ${fault}`;
      }
      return undefined;
    }
    if (typeof features !== "object" || features === null)
      return `"features" must be an object of named features (${this.features.join(", ")})`;
    const obj = features as Record<string, unknown>;
    let lower: Map<string, unknown> | undefined;
    for (let k = 0; k < this.inputs.length; k++) {
      const input = this.inputs[k]!;
      for (let j = 0; j < input.rowSize; j++) {
        const name = input.features![j]!;
        let v = obj[name];
        if (v === undefined) {
          lower ??= new Map(Object.entries(obj).map(([key, val]) => [key.toLowerCase(), val]));
          v = lower.get(name.toLowerCase());
        }
        if (v === undefined) return `feature ${JSON.stringify(name)} is missing`;
        const fault = this.jsonValue(chunk.columns[k]!, row * input.rowSize + j, input.datatype, v);
        if (fault) return `feature ${JSON.stringify(name)} ${fault}`;
      }
    }
    return undefined;
  }

  private jsonValue(column: DenseArray, at: number, datatype: Datatype, v: unknown): string | undefined {
    const bool = DATATYPES[datatype].kind === "bool";
    const element = canonicalElement(datatype, bool && (v === 0 || v === 1) ? v === 1 : v);
    if (element === undefined) {
      if (typeof v === "object" || typeof v === "undefined")
        return `${elementExpectation(datatype)}, got ${v === null ? "null" : typeof v}`;
      return `${JSON.stringify(v)} ${elementExpectation(datatype)}`;
    }
    setDenseElement(datatype as NumericDatatype, column, at, element);
    return undefined;
  }

  /** v2 tensors, checked against the manifest; one line is one row. */
  private jsonTensors(chunk: ParsedChunk, inputs: unknown): string | undefined {
    if (!this.tensors) return "v2 tensors are not accepted here";
    const parsed = this.tensors.Tensor.array().safeParse(inputs);
    if (!parsed.success)
      return `"inputs" must be an array of v2 tensors: ${parsed.error.issues.map((i) => `/inputs/${i.path.join("/")}: ${i.message}`).join("; ")}`;
    const { value, faults } = this.tensors.validateInputs(this.manifest, parsed.data);
    if (!value) return faults.map((f) => `${f.path}: ${f.message}`).join("; ");
    const batched = this.manifest.inputs[0]?.shape[0] === -1;
    if (batched && value.rows !== 1)
      return `each line must hold one row (batch dimension 1), got ${value.rows}; put one row per line`;
    if (!this.layout.dense) {
      chunk.items!.push(value.inputs);
      return undefined;
    }
    const row = chunk.count;
    for (let k = 0; k < this.inputs.length; k++) {
      const input = this.inputs[k]!;
      const tensor = value.inputs.find((t) => t.name === input.name)!;
      const column = chunk.columns[k]!;
      for (let j = 0; j < input.rowSize; j++)
        setDenseElement(input.datatype as NumericDatatype, column, row * input.rowSize + j, tensor.data[j]!);
    }
    return undefined;
  }
}
