import type { IncomingMessage } from "node:http";
import type { Readable, Transform } from "node:stream";
import zlib from "node:zlib";
import type { FieldFault } from "@inferline/contracts";

/**
 * The Content-Encodings a request body may have, each with its streaming decoder: those
 * express.json (body-parser) inflates on the JSON routes, so that an NDJSON batch takes the same.
 * Called through the module object, as body-parser calls it.
 */
const DECODERS = new Map<string, () => Transform>([
  ["gzip", () => zlib.createGunzip()],
  ["deflate", () => zlib.createInflate()],
  ["br", () => zlib.createBrotliDecompress()],
]);
// Node 22.15 and later inflate zstd, and body-parser takes it where Node can.
const zstd = (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;
if (zstd) DECODERS.set("zstd", () => zstd.call(zlib));

/** The field fault of a Content-Encoding no route inflates (415 unsupported_encoding). */
export const CONTENT_ENCODING_FAULT: FieldFault = {
  path: "/headers/content-encoding",
  message: `Content-Encoding must be identity or one of ${[...DECODERS.keys()].join(", ")}`,
};

/** A request body as it was before its Content-Encoding. */
export interface DecodedBody {
  body: Readable;
  /** Whether the body is inflated (its Content-Length then counts the encoded bytes). */
  encoded: boolean;
  /** Stops inflating (nothing more is decoded, however much arrives); the request is left to its caller. */
  stop(): void;
}

/**
 * The request's body decoded as it streams in: the request itself, or it piped through the
 * Content-Encoding's decoder, which inflates only as fast as its reader reads (so a reader that
 * counts bytes stops a zip bomb at its limit). Null when the encoding is none of DECODERS.
 */
export function decodedBody(req: IncomingMessage): DecodedBody | null {
  // Read as body-parser reads it (an empty header is identity), so both forms agree on every value.
  const encoding = req.headers["content-encoding"]?.toLowerCase() || "identity";
  if (encoding === "identity") return { body: req, encoded: false, stop: () => {} };
  const decoder = DECODERS.get(encoding)?.();
  if (!decoder) return null;
  // A body that does not inflate is the client's fault: 400 malformed_body, as express.json answers it.
  decoder.on("error", (err) => Object.assign(err, { status: 400, expose: true }));
  req.pipe(decoder);
  return {
    body: decoder,
    encoded: true,
    stop: () => {
      req.unpipe(decoder);
      decoder.destroy();
    },
  };
}
