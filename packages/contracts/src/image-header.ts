import { z } from "zod";

/**
 * Bounds on the encoded images (PNG, JPEG…) a BYTES input takes, checked against each image's
 * own header before anything is decoded: a few bytes of header can promise an image whose
 * decoding takes hundreds of MB. The API refuses PNGs and JPEGs past them at submit; the worker
 * refuses any image past them before decoding it.
 */
export const ImageLimits = z.strictObject({
  /** Widest image, in pixels. */
  maxWidth: z.number().int().min(1).max(1_000_000),
  /** Tallest image, in pixels. */
  maxHeight: z.number().int().min(1).max(1_000_000),
  /** Most pixels (width × height). */
  maxPixels: z.number().int().min(1).max(1_000_000_000),
});
export type ImageLimits = z.infer<typeof ImageLimits>;

/** What an image's header says, before any of it is decoded. */
export interface ImageHeader {
  format: "PNG" | "JPEG";
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number =>
  b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);

/** A PNG's dimensions from its IHDR chunk, which must come first. */
function pngHeader(b: Uint8Array): ImageHeader | undefined {
  if (b.length < 24 || PNG_SIGNATURE.some((v, i) => b[i] !== v)) return undefined;
  if (String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== "IHDR") return undefined;
  return { format: "PNG", width: u32(b, 16), height: u32(b, 20) };
}

/** Start-of-frame markers (SOF0-SOF15 but DHT C4, JPG C8 and DAC CC): they hold the frame's size. */
const isFrameMarker = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** A JPEG's dimensions from its frame header, walking the segments before it by their lengths. */
function jpegHeader(b: Uint8Array): ImageHeader | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    // Markers without a length: TEM and the restart markers.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    // The scan starts (or the image ends) before any frame header: not a JPEG this can read.
    if (marker === 0xda || marker === 0xd9) return undefined;
    if (isFrameMarker(marker)) {
      // A height of 0 is given later (a DNL segment): unknown here.
      if (at + 9 > b.length || u16(b, at + 5) === 0) return undefined;
      return { format: "JPEG", width: u16(b, at + 7), height: u16(b, at + 5) };
    }
    at += 2 + u16(b, at + 2);
  }
  return undefined;
}

/** The format and dimensions a PNG's or a JPEG's header gives; undefined for other bytes, or a header cut short. */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  return pngHeader(bytes) ?? jpegHeader(bytes);
}

/** Why an image of these dimensions is refused, naming the limit it passes; undefined when it is within `limits`. */
export function imageLimitFault(
  header: { format: string; width: number; height: number },
  limits: ImageLimits,
): string | undefined {
  const { format, width, height } = header;
  const image = `a ${format} of ${width}×${height} pixels`;
  if (width === 0 || height === 0) return `${image} has no pixels`;
  if (width > limits.maxWidth) return `${image} is wider than this input's maxWidth of ${limits.maxWidth} pixels`;
  if (height > limits.maxHeight) return `${image} is taller than this input's maxHeight of ${limits.maxHeight} pixels`;
  if (width * height > limits.maxPixels) return `${image} has more than this input's maxPixels of ${limits.maxPixels}`;
  return undefined;
}
