import Papa from "papaparse";
import { DATATYPES, integerElement, type Datatype, type ModelManifest } from "@inferline/contracts";
import type { RowError } from "./chunk-parser.ts";
import type { ModelLayout } from "./model-layout.ts";
import { UsageError, type OutputFormat } from "./types.ts";

/** An output element as local runs (typed arrays, base64 strings) or the API's JSON (remote) give it. */
type OutputElement = number | bigint | boolean | string;

/** One model output over the rows of a chunk: `rowSize` elements per row, row-major. */
export interface OutputBlock {
  name: string;
  data: ArrayLike<OutputElement>;
  rowSize: number;
}

interface Plan {
  /** The output decoded into `label` + `probabilities` (the first labelled output whose rows hold one value per label). */
  labelled?: { name: string; labels: string[] };
  /** Every other output, written raw; `rowSize` is known up front only when its shape is static. */
  raw: Array<{ name: string; rowSize?: number }>;
}

function plan(layout: ModelLayout, manifest: ModelManifest): Plan {
  let labelled: Plan["labelled"];
  const raw: Plan["raw"] = [];
  for (const out of layout.outputs) {
    const spec = manifest.outputs.find((o) => o.name === out.name)!;
    const rest = spec.shape.slice(spec.shape[0] === -1 ? 1 : 0);
    const rowSize = rest.every((d) => d >= 0) ? rest.reduce((a, b) => a * b, 1) : undefined;
    if (!labelled && out.labels && rowSize === out.labels.length) labelled = { name: out.name, labels: out.labels };
    else raw.push({ name: out.name, ...(rowSize !== undefined ? { rowSize } : {}) });
  }
  return { ...(labelled ? { labelled } : {}), raw };
}

type ElementText = (v: OutputElement | undefined) => string;

const num = (v: OutputElement | undefined): string => (typeof v === "number" && Number.isFinite(v) ? `${v}` : "null");

/** Drops trailing zeros of a decimal mantissa ("0.500000000" → "0.5", "1.00000000e-7" → "1e-7"). */
function trimZeros(s: string): string {
  const e = s.indexOf("e");
  const end = e === -1 ? s.length : e;
  if (s.charCodeAt(end - 1) !== 48 || s.indexOf(".") === -1) return s;
  let cut = end;
  while (s.charCodeAt(cut - 1) === 48) cut--;
  if (s.charCodeAt(cut - 1) === 46) cut--;
  return e === -1 ? s.slice(0, cut) : s.slice(0, cut) + s.slice(e);
}

/**
 * A float32 in at most 9 significant digits: always enough to read back the very same float32
 * (`Math.fround(parseFloat(s)) === v`), shorter and faster to write than the float64 digits.
 */
const f32 = (v: OutputElement | undefined): string =>
  typeof v === "number" && Number.isFinite(v) ? trimZeros(v.toPrecision(9)) : "null";

/** BOOL: a local run gives 0/1 bytes, the API true/false. */
const bool = (v: OutputElement | undefined): string =>
  v === undefined ? "null" : v === true || v === 1 ? "true" : "false";

/** An integer in JSON as the API writes it (integerElement): a local run gives INT64 as bigint, the API as a number or a decimal string. */
const intJson = (v: OutputElement | undefined): string =>
  typeof v === "bigint" ? JSON.stringify(integerElement(v)) : typeof v === "string" ? JSON.stringify(v) : num(v);
const intText = (v: OutputElement | undefined): string =>
  typeof v === "bigint" || typeof v === "string" ? `${v}` : num(v);

/**
 * How the elements of an output of `datatype` are written, so that a local run and the API's
 * results (remote) give the same text: FP16 and FP32 in at most 9 digits (which read back to the
 * same float32), integers exact, BYTES as their base64 (a JSON string in JSONL).
 */
function elementText(datatype: Datatype, json: boolean): ElementText {
  if (datatype === "FP32" || datatype === "FP16") return f32;
  switch (DATATYPES[datatype].kind) {
    case "bool":
      return bool;
    case "int":
      return json ? intJson : intText;
    case "bytes":
      return json ? (v) => JSON.stringify(v ?? null) : (v) => (v === undefined ? "" : `${v}`);
    default:
      return num;
  }
}

/**
 * Writes result rows. JSONL, one object per scored row:
 *   {"line": N, "id": <as given, when the row had one>, "label": "<top class>",
 *    "probabilities": {"<class>": p, …}, "outputs": {"<other output>": [row values]}}
 * `label`/`probabilities` come from the model's labelled output, `outputs` holds every other
 * output (absent when there is none). CSV: columns line, id, label, one `prob_<class>` column per
 * class, then `<output>_<i>` per element of other outputs. Errors are JSONL {"line", "id"?, "error"}.
 */
export class ResultFormatter {
  private readonly plan: Plan;
  private readonly labelKeys: string[];
  private readonly labelValues: string[];
  /** How each output's elements are written, by output name. */
  private readonly texts: Map<string, ElementText>;

  constructor(
    layout: ModelLayout,
    manifest: ModelManifest,
    private readonly format: OutputFormat,
  ) {
    this.plan = plan(layout, manifest);
    this.texts = new Map(manifest.outputs.map((o) => [o.name, elementText(o.datatype, format !== "csv")]));
    const labels = this.plan.labelled?.labels ?? [];
    this.labelValues = labels.map((l) => JSON.stringify(l));
    this.labelKeys = labels.map((l, i) => `${i === 0 ? "" : ","}${JSON.stringify(l)}:`);
    if (format === "csv") {
      const dynamic = this.plan.raw.find((r) => r.rowSize === undefined);
      if (dynamic)
        throw new UsageError(
          `output ${dynamic.name} of model ${layout.name} has a dynamic shape, which CSV columns cannot hold; use --format jsonl`,
        );
    }
  }

  private textOf(output: string): ElementText {
    return this.texts.get(output) ?? num;
  }

  /** What the output starts with (the CSV header line; nothing for JSONL). */
  header(): string {
    if (this.format !== "csv") return "";
    const cols = ["line", "id"];
    if (this.plan.labelled) cols.push("label", ...this.plan.labelled.labels.map((l) => `prob_${l}`));
    for (const r of this.plan.raw) for (let i = 0; i < r.rowSize!; i++) cols.push(`${r.name}_${i}`);
    return `${Papa.unparse([cols], { newline: "\n" })}\n`;
  }

  /** Formats `count` rows (with their lines and ids) given the outputs stacked over those rows. */
  rows(count: number, lines: number[], ids: unknown[] | null, outputs: OutputBlock[]): string {
    const labelled = this.plan.labelled
      ? outputs.find((o) => o.name === this.plan.labelled!.name && o.rowSize === this.labelKeys.length)
      : undefined;
    const raw = outputs.filter((o) => o !== labelled);
    return this.format === "csv"
      ? this.csvRows(count, lines, ids, labelled, raw)
      : this.jsonRows(count, lines, ids, labelled, raw);
  }

  private jsonRows(
    count: number,
    lines: number[],
    ids: unknown[] | null,
    labelled: OutputBlock | undefined,
    raw: OutputBlock[],
  ): string {
    let s = "";
    const k = this.labelKeys.length;
    const fmtL = labelled ? this.textOf(labelled.name) : num;
    const fmtRaw = raw.map((o) => this.textOf(o.name));
    for (let r = 0; r < count; r++) {
      s += `{"line":${lines[r]}`;
      const id = ids?.[r];
      if (id !== undefined) s += `,"id":${JSON.stringify(id)}`;
      if (labelled) {
        const data = labelled.data;
        const base = r * k;
        let best = 0;
        for (let c = 1; c < k; c++) if ((data[base + c] as number) > (data[base + best] as number)) best = c;
        s += `,"label":${this.labelValues[best]},"probabilities":{`;
        for (let c = 0; c < k; c++) s += this.labelKeys[c] + fmtL(data[base + c]);
        s += "}";
      }
      if (raw.length > 0) {
        s += ',"outputs":{';
        raw.forEach((o, i) => {
          s += `${i === 0 ? "" : ","}${JSON.stringify(o.name)}:[`;
          for (let c = 0; c < o.rowSize; c++) s += (c === 0 ? "" : ",") + fmtRaw[i]!(o.data[r * o.rowSize + c]);
          s += "]";
        });
        s += "}";
      }
      s += "}\n";
    }
    return s;
  }

  private csvRows(
    count: number,
    lines: number[],
    ids: unknown[] | null,
    labelled: OutputBlock | undefined,
    raw: OutputBlock[],
  ): string {
    const records = new Array<Array<string | number>>(count);
    const k = this.labelKeys.length;
    const fmtL = labelled ? this.textOf(labelled.name) : num;
    const fmtRaw = raw.map((o) => this.textOf(o.name));
    for (let r = 0; r < count; r++) {
      const id = ids?.[r];
      const rec: Array<string | number> = [
        lines[r]!,
        id === undefined ? "" : typeof id === "string" ? id : JSON.stringify(id),
      ];
      if (labelled) {
        const base = r * k;
        let best = 0;
        for (let c = 1; c < k; c++)
          if ((labelled.data[base + c] as number) > (labelled.data[base + best] as number)) best = c;
        rec.push(this.plan.labelled!.labels[best]!);
        for (let c = 0; c < k; c++) rec.push(fmtL(labelled.data[base + c]));
      }
      raw.forEach((o, i) => {
        for (let c = 0; c < o.rowSize; c++) rec.push(fmtRaw[i]!(o.data[r * o.rowSize + c]));
      });
      records[r] = rec;
    }
    return count === 0 ? "" : `${Papa.unparse(records, { newline: "\n" })}\n`;
  }

  errors(errors: RowError[]): string {
    let s = "";
    for (const e of errors)
      s += `${JSON.stringify(e.id === undefined ? { line: e.line, error: e.error } : { line: e.line, id: e.id, error: e.error })}\n`;
    return s;
  }
}
