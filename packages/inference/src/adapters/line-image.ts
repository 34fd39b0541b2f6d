import zlib from "node:zlib";
import { convertIndexedToRgb, decode as decodePng, hasPngSignature, type DecodedPng } from "fast-png";
import sharp from "sharp";
import { imageLimitFault, readImageHeader, type ImageLimits } from "@inferline/contracts";

/**
 * Decoding a text-line image into the model's input: RGB bytes, then a bilinear resize to the
 * model's height straight into normalised planar BGR floats.
 *
 * Why not all in sharp: for a text line (a few hundred by ~48 px) libvips costs about 1 ms to
 * decode and 1.5 ms more to resize, most of it per-call set-up, next to a 30 ms model run; plain
 * PNGs (what clients send) decode with fast-png in about 0.3 ms, and the resize below is a single
 * pass. Everything else (JPEG, WebP, PNGs with an EXIF orientation, an ICC profile, samples below
 * 8 bits or a transparent colour) is decoded by sharp, then resized by the same code, so every
 * format gives the model the same arithmetic.
 */

/** RGB, 3 bytes a pixel, any alpha already flattened onto white. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
  /** Which decoder read it. */
  decodedBy: "fast-png" | "libvips";
}

/** An image whose header gives dimensions past the limits: refused before any of it is decoded. */
export class ImageTooLargeError extends Error {}

/**
 * Decodes an encoded image (PNG fast path, anything libvips reads otherwise). Throws on bad input,
 * and ImageTooLargeError, before inflating or decoding anything, for an image past `limits`.
 */
export async function decodeRgb(bytes: Buffer, limits: ImageLimits): Promise<RgbImage> {
  await assertWithinLimits(bytes, limits);
  const png = plainPng(bytes);
  if (png) return png;
  const { data, info } = await sharp(bytes, { autoOrient: true, limitInputPixels: limits.maxPixels, failOn: "error" })
    .flatten({ background: "#ffffff" })
    .toColourspace("srgb")
    .removeAlpha()
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`unexpected decode to ${info.channels} channels`);
  return { width: info.width, height: info.height, rgb: data, decodedBy: "libvips" };
}

/**
 * Refuses an image past `limits` by the dimensions its header gives: PNG and JPEG headers are read
 * here, other formats' by libvips, which reads only the header for metadata.
 */
async function assertWithinLimits(bytes: Buffer, limits: ImageLimits): Promise<void> {
  const fault = imageLimitFault(readImageHeader(bytes) ?? (await libvipsHeader(bytes)), limits);
  if (fault) throw new ImageTooLargeError(fault);
}

async function libvipsHeader(bytes: Buffer): Promise<{ format: string; width: number; height: number }> {
  const meta = await sharp(bytes, { failOn: "error" }).metadata();
  return { format: meta.format.toUpperCase(), width: meta.width, height: meta.height };
}

/** Chunks whose meaning the fast path does not apply: sharp decodes such PNGs. */
const NEEDS_LIBVIPS = new Set(["eXIf", "iCCP"]);

/**
 * A PNG the fast path can decode exactly as libvips would, decoded; undefined when it is not such
 * a PNG. Its dimensions were checked against the limits already (assertWithinLimits).
 */
function plainPng(bytes: Buffer): RgbImage | undefined {
  if (bytes.length < 33 || !hasPngSignature(bytes)) return undefined;
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const chunks = scanChunks(bytes);
  if (chunks.needsLibvips) return undefined;
  assertInflatesWithin(chunks.idat, rawBound(bytes, width, height));
  const png = decodePng(bytes, { checkCrc: true });
  // Samples below 8 bits are packed per scan line: libvips unpacks those.
  if (png.depth < 8) return undefined;
  if (png.palette)
    return toRgb(png.width, png.height, convertIndexedToRgb(png), png.palette[0]?.length === 4 ? 4 : 3, 255);
  if ((png.transparency?.length ?? 0) > 0) return undefined;
  return toRgb(png.width, png.height, png.data, png.channels, png.depth === 16 ? 65535 : 255);
}

/** The chunk list: whether a chunk asks for libvips (NEEDS_LIBVIPS), and the image data (IDAT) chunks' bytes. */
function scanChunks(bytes: Buffer): { needsLibvips: boolean; idat: Buffer[] } {
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    if (NEEDS_LIBVIPS.has(type)) return { needsLibvips: true, idat };
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)));
    if (type === "IEND") break;
    at += 12 + length;
  }
  return { needsLibvips: false, idat };
}

/** Channels per colour type (IHDR byte 25): grey, -, RGB, palette, grey+alpha, -, RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Most bytes the image data may inflate to: a filter byte and the samples of each scan line,
 * doubled for Adam7's passes and slack. Anything beyond is not this image (a zlib bomb: 8 MB of
 * PNG can inflate to 8 GB), and fast-png, unlike libpng, would inflate it all.
 */
function rawBound(bytes: Buffer, width: number, height: number): number {
  const bits = bytes[24]! * (CHANNELS[bytes[25]!] ?? 4);
  return 2 * height * (1 + Math.ceil((width * bits) / 8)) + 1024;
}

/** Inflates the image data natively, stopping at `bound` bytes: throws for data that would go past it. */
function assertInflatesWithin(idat: Buffer[], bound: number): void {
  try {
    zlib.inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat), { maxOutputLength: bound });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
      throw new Error(`the image data inflates to more than the ${bound} bytes its header allows`, { cause: err });
    throw err;
  }
}

/** Grey, grey+alpha, RGB or RGBA samples (8 or 16 bits) → RGB bytes on a white background. */
function toRgb(width: number, height: number, data: DecodedPng["data"], channels: number, max: number): RgbImage {
  const pixels = width * height;
  if (data.length < pixels * channels) throw new Error("the PNG holds fewer pixels than its header says");
  if (channels === 3 && max === 255) return { width, height, rgb: data as Uint8Array, decodedBy: "fast-png" };
  const rgb = new Uint8Array(pixels * 3);
  const colour = channels >= 3;
  const alpha = channels === 2 || channels === 4;
  const scale = 255 / max;
  for (let i = 0; i < pixels; i++) {
    const at = i * channels;
    const a = alpha ? data[at + channels - 1]! / max : 1;
    // Over white: c·a + 255·(1 − a), as sharp's flatten.
    const white = 255 * (1 - a);
    rgb[i * 3] = Math.round(data[at]! * scale * a + white);
    rgb[i * 3 + 1] = Math.round(data[colour ? at + 1 : at]! * scale * a + white);
    rgb[i * 3 + 2] = Math.round(data[colour ? at + 2 : at]! * scale * a + white);
  }
  return { width, height, rgb, decodedBy: "fast-png" };
}

/**
 * Resizes to `width` × `height` with bilinear interpolation on pixel centres (OpenCV's
 * INTER_LINEAR, which PaddleOCR's preprocessing uses) and writes planar B, G, R floats normalised
 * to [-1, 1] ((v / 255 − 0.5) / 0.5), the order PaddleOCR feeds from cv2's BGR images.
 */
export function resizeToBgrPlanes(image: RgbImage, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const xs = samplePoints(image.width, width);
  const ys = samplePoints(image.height, height);
  // Separable: each source row is resized across once (into floats, 3 per pixel), then output
  // rows blend two of those; a row is computed when first needed, and rows come in order.
  const across = (y: number, into: Float32Array): void => {
    const src = image.rgb;
    const base = y * image.width * 3;
    for (let x = 0; x < width; x++) {
      const a = base + xs.lo[x]! * 3;
      const b = base + xs.hi[x]! * 3;
      const w = xs.weight[x]!;
      const i = x * 3;
      into[i] = src[a]! + (src[b]! - src[a]!) * w;
      into[i + 1] = src[a + 1]! + (src[b + 1]! - src[a + 1]!) * w;
      into[i + 2] = src[a + 2]! + (src[b + 2]! - src[a + 2]!) * w;
    }
  };
  let top = new Float32Array(width * 3);
  let bottom = new Float32Array(width * 3);
  let topRow = -1;
  let bottomRow = -1;
  for (let y = 0; y < height; y++) {
    const lo = ys.lo[y]!;
    const hi = ys.hi[y]!;
    if (lo !== topRow) {
      if (lo === bottomRow) {
        [top, bottom] = [bottom, top];
        bottomRow = topRow;
      } else across(lo, top);
      topRow = lo;
    }
    if (hi !== bottomRow) {
      across(hi, bottom);
      bottomRow = hi;
    }
    const wy = ys.weight[y]!;
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = x * 3;
      // RGB in, planes B, G, R out; v / 127.5 − 1 = (v / 255 − 0.5) / 0.5.
      out[2 * plane + row + x] = (top[i]! + (bottom[i]! - top[i]!) * wy) / 127.5 - 1;
      out[plane + row + x] = (top[i + 1]! + (bottom[i + 1]! - top[i + 1]!) * wy) / 127.5 - 1;
      out[row + x] = (top[i + 2]! + (bottom[i + 2]! - top[i + 2]!) * wy) / 127.5 - 1;
    }
  }
  return out;
}

/** For each output index: the two source indices either side of its centre and the weight of the second. */
function samplePoints(from: number, to: number): { lo: Int32Array; hi: Int32Array; weight: Float32Array } {
  const lo = new Int32Array(to);
  const hi = new Int32Array(to);
  const weight = new Float32Array(to);
  const scale = from / to;
  for (let i = 0; i < to; i++) {
    const at = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), from - 1);
    lo[i] = Math.floor(at);
    hi[i] = Math.min(lo[i]! + 1, from - 1);
    weight[i] = at - lo[i]!;
  }
  return { lo, hi, weight };
}
