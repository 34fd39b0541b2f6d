import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jpegWithHeader, pngWithHeader } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// The shipped ocr-text-line manifest bounds its images (`image` on its input): a PNG or JPEG whose
// header gives more than a text line can be is refused at submit, before anything is stored or
// queued; the worker refuses any other image past the bounds before decoding it (see the
// inference package's tests). No worker runs here: only the API's checks are under test.

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false, ocrTextLine: true });
});
afterAll(async () => {
  await stack?.close();
});

const b64 = (bytes: Buffer): string => bytes.toString("base64");
/** A real PNG of `width`×48 black pixels. */
const line = (width: number) => b64(pngWithHeader(width, 48, Buffer.alloc(48 * (1 + 3 * width))));
const job = (...images: string[]) => ({
  model: "ocr-text-line",
  inputs: [{ name: "image", datatype: "BYTES", shape: [images.length], data: images }],
});

describe("ocr-text-line images at submit", () => {
  it("accepts text-line images within the manifest's bounds", async () => {
    const submit = await stack.alpha.post("/v1/jobs", job(line(200), line(1200)));
    expect(submit.status).toBe(202);
  });

  it.each([
    [
      "a PNG wider than a line can be",
      () => b64(pngWithHeader(100_000, 48)),
      /PNG of 100000×48 pixels is wider than this input's maxWidth of 16384/,
    ],
    ["a PNG whose header claims 4e9×4e9", () => b64(pngWithHeader(4_000_000_000, 4_000_000_000)), /maxWidth of 16384/],
    [
      "a JPEG taller than a line can be",
      () => b64(jpegWithHeader(1000, 30_000)),
      /JPEG of 1000×30000 pixels is taller than this input's maxHeight of 2048/,
    ],
    [
      "a PNG of more pixels than a line can have",
      () => b64(pngWithHeader(8000, 2000)),
      /has more than this input's maxPixels of 4194304/,
    ],
  ])("refuses %s with a 422 naming the element and the limit", async (_label, image, message) => {
    const submit = await stack.alpha.post("/v1/jobs", job(image()));
    expect(submit.status).toBe(422);
    expect(submit.body).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "/inputs/0/data/0", message: expect.stringMatching(message) }],
    });
  });

  it("refuses a whole batch at submit for one item's image, naming the item", async () => {
    const submit = await stack.alpha.post("/v1/batches", {
      model: "ocr-text-line",
      items: [{ inputs: job(line(300)).inputs }, { inputs: job(line(300), b64(pngWithHeader(20_000, 48))).inputs }],
    });
    expect(submit.status).toBe(422);
    expect(submit.body.errors).toEqual([
      { path: "/items/1/inputs/0/data/1", message: expect.stringContaining("maxWidth of 16384") },
    ]);
  });
});
