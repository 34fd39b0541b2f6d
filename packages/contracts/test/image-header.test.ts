import { describe, expect, it } from "vitest";
import { imageLimitFault, readImageHeader } from "../src/image-header.ts";
import { ModelManifest } from "../src/manifest.ts";
import { validateInputs } from "../src/validate-inputs.ts";

/** The first bytes of a PNG: signature and IHDR, as far as the dimensions. */
function pngStart(width: number, height: number): Buffer {
  const b = Buffer.alloc(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13], 0);
  b.write("IHDR", 12, "latin1");
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return b;
}

/** SOI, an APP1 segment of `app1` bytes to skip, fill bytes, then a progressive frame header (SOF2). */
function jpegStart(width: number, height: number, app1 = 100): Buffer {
  const app = Buffer.alloc(app1 + 4, 0x45);
  app.set([0xff, 0xe1, (app1 + 2) >> 8, (app1 + 2) & 0xff], 0);
  const sof = Buffer.from([
    0xff,
    0xff,
    0xc2,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    3,
  ]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app, sof]);
}

const LIMITS = { maxWidth: 1000, maxHeight: 100, maxPixels: 50_000 };

describe("readImageHeader", () => {
  it("reads a PNG's IHDR and a JPEG's frame header past the segments before it", () => {
    expect(readImageHeader(pngStart(4_000_000_000, 7))).toEqual({ format: "PNG", width: 4_000_000_000, height: 7 });
    expect(readImageHeader(jpegStart(65_535, 300, 60_000))).toEqual({ format: "JPEG", width: 65_535, height: 300 });
  });

  it("knows nothing of other bytes, of a header cut short, or of a JPEG whose height comes later", () => {
    expect(readImageHeader(Buffer.from("RIFF....WEBPVP8 "))).toBeUndefined();
    expect(readImageHeader(pngStart(10, 10).subarray(0, 20))).toBeUndefined();
    expect(readImageHeader(jpegStart(10, 10).subarray(0, 110))).toBeUndefined();
    expect(readImageHeader(jpegStart(10, 0))).toBeUndefined();
    expect(readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toBeUndefined();
  });
});

describe("imageLimitFault", () => {
  it.each([
    [1000, 50, undefined],
    [1001, 1, "a PNG of 1001×1 pixels is wider than this input's maxWidth of 1000 pixels"],
    [10, 101, "a PNG of 10×101 pixels is taller than this input's maxHeight of 100 pixels"],
    [501, 100, "a PNG of 501×100 pixels has more than this input's maxPixels of 50000"],
    [0, 5, "a PNG of 0×5 pixels has no pixels"],
  ])("%i×%i: %s", (width, height, fault) => {
    expect(imageLimitFault({ format: "PNG", width, height }, LIMITS)).toBe(fault);
  });
});

describe("validateInputs with image limits", () => {
  const manifest = ModelManifest.parse({
    name: "lines",
    versions: [{ version: "1", file: "m.onnx" }],
    inputs: [{ name: "image", datatype: "BYTES", shape: [-1], image: LIMITS }],
    outputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
  });
  const submit = (...images: Buffer[]) =>
    validateInputs(manifest, [
      { name: "image", datatype: "BYTES", shape: [images.length], data: images.map((b) => b.toString("base64")) },
    ]);

  it("refuses an image past a limit by its header, naming the element and the limit", () => {
    expect(submit(pngStart(300, 40), jpegStart(2000, 20)).faults).toEqual([
      {
        path: "/inputs/0/data/1",
        message: "a JPEG of 2000×20 pixels is wider than this input's maxWidth of 1000 pixels",
      },
    ]);
    expect(submit(pngStart(1_000_000, 1_000_000)).faults).toEqual([
      { path: "/inputs/0/data/0", message: expect.stringContaining("maxWidth") },
    ]);
  });

  it("passes images within the limits, and bytes whose header it cannot read (the worker judges those)", () => {
    expect(submit(pngStart(1000, 50), jpegStart(10, 100), Buffer.from("not an image")).faults).toEqual([]);
  });

  it("applies only to BYTES inputs", () => {
    const bad = ModelManifest.safeParse({
      ...manifest,
      inputs: [{ name: "x", datatype: "FP32", shape: [-1], image: LIMITS }],
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({
      path: ["inputs", 0, "image"],
      message: "image limits apply to BYTES inputs only",
    });
  });
});
