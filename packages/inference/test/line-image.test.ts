import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { jpegWithHeader, pngWithHeader } from "@inferline/testing";
import { decodeRgb, ImageTooLargeError, resizeToBgrPlanes, type RgbImage } from "../src/adapters/line-image.ts";

// The OCR adapter's image decoding: plain PNGs through fast-png, everything else through libvips,
// both handing the same RGB-on-white pixels to one resize. libvips is the reference here.

const LIMITS = { maxWidth: 16_384, maxHeight: 2048, maxPixels: 4 * 1024 * 1024 };
const W = 37;
const H = 11;

/** A W×H image with every channel and alpha varying, so any mix-up of channels or rows shows. */
function pattern(channels: 3 | 4): Buffer {
  const data = Buffer.alloc(W * H * channels);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const at = (y * W + x) * channels;
      data[at] = (x * 7) % 256;
      data[at + 1] = (y * 23) % 256;
      data[at + 2] = (x * y * 5 + 40) % 256;
      if (channels === 4) data[at + 3] = (x * 13 + y * 31) % 256;
    }
  }
  return data;
}

const raw = (channels: 3 | 4) => sharp(pattern(channels), { raw: { width: W, height: H, channels } });

/** What libvips makes of the same bytes: flattened on white, sRGB, 8-bit RGB. */
async function reference(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes)
    .flatten({ background: "#ffffff" })
    .toColourspace("srgb")
    .removeAlpha()
    .raw({ depth: "uchar" })
    .toBuffer();
}

function maxDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe("decodeRgb", () => {
  const plain: Array<[string, () => Promise<Buffer>]> = [
    ["RGB", () => raw(3).png().toBuffer()],
    ["RGBA with partial transparency", () => raw(4).png().toBuffer()],
    ["grey", () => raw(3).toColourspace("b-w").png().toBuffer()],
    ["grey with alpha", () => raw(4).toColourspace("b-w").png().toBuffer()],
    ["16-bit RGB", () => raw(3).toColourspace("rgb16").png().toBuffer()],
    ["interlaced", () => raw(3).png({ progressive: true }).toBuffer()],
    ["a palette", () => raw(3).png({ palette: true, colours: 256, dither: 0 }).toBuffer()],
    ["a palette with transparency", () => raw(4).png({ palette: true, colours: 256, dither: 0 }).toBuffer()],
  ];

  it.each(plain)("reads a PNG with %s with fast-png, as libvips reads it", async (_, make) => {
    const bytes = await make();
    const image = await decodeRgb(bytes, LIMITS);
    expect(image.decodedBy).toBe("fast-png");
    expect([image.width, image.height]).toEqual([W, H]);
    // Flattening rounds once here and may round twice in libvips.
    expect(maxDifference(image.rgb, await reference(bytes))).toBeLessThanOrEqual(1);
  });

  it("leaves JPEGs and PNGs with an EXIF orientation to libvips, which applies the orientation", async () => {
    const jpeg = await decodeRgb(await raw(3).jpeg().toBuffer(), LIMITS);
    expect(jpeg.decodedBy).toBe("libvips");
    const rotated = await raw(3).withMetadata({ orientation: 6 }).png().toBuffer();
    const image = await decodeRgb(rotated, LIMITS);
    expect(image.decodedBy).toBe("libvips");
    expect([image.width, image.height]).toEqual([H, W]);
  });

  it.each([
    [100_000, 48, /PNG of 100000×48 pixels is wider than this input's maxWidth of 16384/],
    [300, 5000, /taller than this input's maxHeight of 2048/],
    [8000, 600, /PNG of 8000×600 pixels has more than this input's maxPixels of 4194304/],
    [100_000, 100_000, /wider than/],
    [0, 10, /has no pixels/],
  ])(
    "refuses a PNG whose header gives %i×%i, past a limit, before inflating anything",
    async (width, height, message) => {
      // 16 MB of image data in 16 KB of deflate: within what a 100000×100000 header allows, so only the header's bounds stop it.
      const bytes = pngWithHeader(width, height, Buffer.alloc(16 * 1024 * 1024));
      const refused = decodeRgb(bytes, LIMITS);
      await expect(refused).rejects.toThrow(ImageTooLargeError);
      await expect(refused).rejects.toThrow(message);
    },
  );

  it("refuses a JPEG, and a format only libvips reads, whose header gives more than the limits", async () => {
    // A frame header claiming 60000×60000 and nothing after it: only the header is read.
    await expect(decodeRgb(jpegWithHeader(60_000, 60_000), LIMITS)).rejects.toThrow(
      /JPEG of 60000×60000 pixels is wider/,
    );
    const webp = await sharp({ create: { width: 3000, height: 1500, channels: 3, background: "#fff" } })
      .webp()
      .toBuffer();
    await expect(decodeRgb(webp, LIMITS)).rejects.toThrow(
      /WEBP of 3000×1500 pixels has more than this input's maxPixels/,
    );
  });

  it("reads a header within the limits, and a PNG's missing pixels are an error, not a crash", async () => {
    const short = decodeRgb(pngWithHeader(100, 100), LIMITS);
    await expect(short).rejects.toThrow();
    await expect(short).rejects.not.toThrow(ImageTooLargeError);
  });

  it("refuses a PNG whose image data inflates far past what its header allows (a zlib bomb), before decoding it", async () => {
    // 10×10 RGB needs 310 bytes; these 16 KB of deflate inflate to 16 MB (8 MB of input could give 8 GB).
    const bomb = pngWithHeader(10, 10, Buffer.alloc(16 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    await expect(decodeRgb(bomb, LIMITS)).rejects.toThrow(/inflates to more than the \d+ bytes its header allows/);
    // Data of the right size is read.
    const exact = pngWithHeader(2, 1, Buffer.from([0, 10, 20, 30, 40, 50, 60]));
    expect(await decodeRgb(exact, LIMITS)).toMatchObject({
      width: 2,
      height: 1,
      decodedBy: "fast-png",
      rgb: Uint8Array.from([10, 20, 30, 40, 50, 60]),
    });
  });

  it("refuses a PNG with a corrupted chunk", async () => {
    const bytes = Buffer.from(await raw(3).png().toBuffer());
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff; // inside the last IDAT, so its CRC no longer matches
    await expect(decodeRgb(bytes, LIMITS)).rejects.toThrow();
  });
});

describe("resizeToBgrPlanes", () => {
  const image = (width: number, height: number, rgb: number[]): RgbImage => ({
    width,
    height,
    rgb: Uint8Array.from(rgb),
    decodedBy: "fast-png",
  });
  const normalised = (v: number) => v / 127.5 - 1;

  it("keeps pixels at the same size and writes them as B, G, R planes in [-1, 1]", () => {
    const out = resizeToBgrPlanes(image(2, 1, [0, 51, 255, 102, 153, 204]), 2, 1);
    expect([...out]).toEqual([255, 204, 51, 153, 0, 102].map(normalised).map(Math.fround));
  });

  it("interpolates between pixel centres as OpenCV's INTER_LINEAR", () => {
    // 2 px → 4 px: centres at −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
    const out = resizeToBgrPlanes(image(2, 1, [0, 0, 0, 200, 200, 200]), 4, 1);
    expect([...out.subarray(0, 4)].map((v) => Math.round((v + 1) * 127.5 * 1000) / 1000)).toEqual([0, 50, 150, 200]);
    // 1 row → 3 rows of the same values.
    const tall = resizeToBgrPlanes(image(1, 1, [10, 20, 30]), 1, 3);
    expect([...tall.subarray(0, 3)]).toEqual([30, 30, 30].map(normalised).map(Math.fround));
  });

  it("downsizes a long line by sampling between neighbours", () => {
    const rgb: number[] = [];
    for (let x = 0; x < 8; x++) rgb.push(x * 30, x * 30, x * 30);
    const out = resizeToBgrPlanes(image(8, 1, rgb), 4, 1);
    // Centres at 0.5, 2.5, 4.5, 6.5: halfway between neighbours.
    expect([...out.subarray(0, 4)].map((v) => Math.round((v + 1) * 127.5 * 1000) / 1000)).toEqual([15, 75, 135, 195]);
  });
});
