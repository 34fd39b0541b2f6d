import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { IRIS_SAMPLES, irisInput, irisJob } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { openPost, type RawAnswer } from "./support/raw-http.ts";

// Compressed request bodies: every body route inflates gzip, deflate and br as it streams, counts
// its limit in inflated bytes, and answers an unknown Content-Encoding 415 naming the header.
const BATCH_LIMIT = 1024 * 1024;
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false, api: { BATCH_BODY_LIMIT: String(BATCH_LIMIT) } });
});
afterAll(async () => {
  await stack?.close();
});

const NDJSON = "application/x-ndjson";
const item = (customId: string) => ({ customId, inputs: [irisInput([IRIS_SAMPLES.setosa])] });
const ndjson = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify(item(`c${i}`))).join("\n") + "\n";
const JSON_TYPE = "application/json";
const jsonBatch = (...customIds: string[]) => JSON.stringify({ model: "iris", items: customIds.map(item) });
const ENCODE: Record<string, (b: Buffer | string) => Buffer> = {
  gzip: (b) => zlib.gzipSync(b),
  deflate: (b) => zlib.deflateSync(b),
  br: (b) => zlib.brotliCompressSync(b),
};

/** A POST over node:http (see openPost), with the test's key. */
function openAlphaPost(path: string, headers: Record<string, string>) {
  return openPost(new URL(path, stack.api.url), { authorization: `Bearer ${stack.alpha.apiKey}`, ...headers });
}

function post(path: string, headers: Record<string, string>, body: Buffer | string): Promise<RawAnswer> {
  const { req, answer } = openAlphaPost(path, headers);
  req.end(body);
  return answer;
}

/** A POST of `body` as `type`, its Content-Encoding header `encoding`. */
const send = (path: string, type: string, encoding: string, body: Buffer | string) =>
  post(path, { "content-type": type, "content-encoding": encoding }, body);

/** Counts the bytes every gunzip created meanwhile inflates (body-parser's and the batch route's alike). */
function countInflated() {
  const real = zlib.createGunzip.bind(zlib);
  let bytes = 0;
  const spy = vi.spyOn(zlib, "createGunzip").mockImplementation((options) => {
    const gunzip = real(options);
    const push = gunzip.push.bind(gunzip);
    gunzip.push = (chunk: Buffer | null, encoding?: BufferEncoding) => {
      bytes += chunk?.length ?? 0;
      return push(chunk, encoding);
    };
    return gunzip;
  });
  return { bytes: () => bytes, restore: () => spy.mockRestore() };
}

/** Settles with `promise`, or fails naming `what` after `ms` (a hang is a failure, not a wait). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const fail = () => new Error(`no answer within ${ms} ms: ${what}`);
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(fail()), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("compressed request bodies", () => {
  it.each(Object.keys(ENCODE))("a %s batch is created from an NDJSON or a JSON body", async (encoding) => {
    const encode = ENCODE[encoding]!;
    const streamed = await send("/v1/batches?model=iris", NDJSON, encoding, encode(ndjson(3)));
    expect(streamed.status).toBe(202);
    expect(streamed.body.total).toBe(3);
    const json = await send("/v1/batches", JSON_TYPE, encoding, encode(jsonBatch("a", "b")));
    expect(json.status).toBe(202);
    expect(json.body.total).toBe(2);
    const results = await stack.alpha.get(`/v1/batches/${streamed.body.id}/results`);
    expect(
      results.text
        .trimEnd()
        .split("\n")
        .map((l) => (JSON.parse(l) as { customId: string }).customId),
    ).toEqual(["c0", "c1", "c2"]);
  });

  it("reads Content-Encoding as express.json does: any case, and an empty value is identity", async () => {
    for (const [encoding, body] of [
      ["GZIP", zlib.gzipSync(ndjson(1))],
      ["", Buffer.from(ndjson(1))],
      ["Identity", Buffer.from(ndjson(1))],
    ] as const) {
      const res = await send("/v1/batches?model=iris", NDJSON, encoding, body);
      expect([res.status, encoding]).toEqual([202, encoding]);
    }
  });

  it("the Idempotency-Key hashes the inflated body: the same items sent compressed replay the first batch", async () => {
    const body = Buffer.from(ndjson(2));
    const headers = { "content-type": NDJSON, "idempotency-key": "gzip-replay" };
    const first = await post("/v1/batches?model=iris", headers, body);
    expect(first.status).toBe(202);
    const again = await post("/v1/batches?model=iris", { ...headers, "content-encoding": "gzip" }, zlib.gzipSync(body));
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
  });

  it("single jobs and v2 infer take the same encodings", async () => {
    const job = await send("/v1/jobs", JSON_TYPE, "gzip", zlib.gzipSync(JSON.stringify(irisJob())));
    expect(job.status).toBe(202);
    // Inflated and parsed: the 422 names a field of the compressed JSON (no worker runs here to answer a valid one).
    const petals = { inputs: [{ name: "petals", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
    const infer = await send("/v2/models/iris/infer", JSON_TYPE, "br", zlib.brotliCompressSync(JSON.stringify(petals)));
    expect(infer.status).toBe(422);
    expect(infer.body.errors[0].path).toBe("/inputs/0/name");
  });

  it("an unknown Content-Encoding is a 415 naming /headers/content-encoding, on every form", async () => {
    const cases: Array<[string, string, string, string]> = [
      ["/v1/batches?model=iris", NDJSON, "compress", ndjson(1)],
      ["/v1/batches", JSON_TYPE, "x-bogus", jsonBatch("a")],
      ["/v1/jobs", JSON_TYPE, "gzip, br", JSON.stringify(irisJob())],
    ];
    for (const [path, type, encoding, body] of cases) {
      const res = await send(path, type, encoding, body);
      expect(res.status, path).toBe(415);
      const named = { path: "/headers/content-encoding", message: expect.stringContaining("gzip") };
      expect(res.body).toMatchObject({ code: "unsupported_encoding", errors: [named] });
      expect(res.body.detail).toContain(encoding);
    }
  });

  it("a body that does not inflate is a 400 malformed_body, never a 500", async () => {
    const truncated = zlib.gzipSync(Buffer.from(ndjson(50))).subarray(0, 200);
    for (const [path, type, body] of [
      ["/v1/batches?model=iris", NDJSON, Buffer.from("not gzip at all\n")],
      ["/v1/batches?model=iris", NDJSON, truncated],
      ["/v1/batches", JSON_TYPE, Buffer.from("not gzip")],
    ] as const) {
      const res = await send(path, type, "gzip", body);
      expect([res.status, res.body.code], path).toEqual([400, "malformed_body"]);
    }
  });

  it("a zip bomb is refused 413 once its inflated bytes pass BATCH_BODY_LIMIT, without inflating the rest", async () => {
    // 64 MiB of newlines (blank lines, skipped; whitespace to JSON) in about 64 KiB of gzip.
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, "\n"), { level: 9 });
    expect(bomb.length).toBeLessThan(BATCH_LIMIT / 4);
    const inflated = countInflated();
    try {
      // NDJSON: answered while the client is still sending, the rest never inflated.
      const streamed = openAlphaPost("/v1/batches?model=iris", { "content-type": NDJSON, "content-encoding": "gzip" });
      streamed.req.write(bomb);
      const answer = await within(streamed.answer, 10_000, "an NDJSON zip bomb");
      streamed.req.destroy();
      expect([answer.status, answer.body.code]).toEqual([413, "body_too_large"]);
      expect(answer.headers.connection).toBe("close");
      expect(inflated.bytes()).toBeGreaterThan(BATCH_LIMIT);
      expect(inflated.bytes()).toBeLessThan(BATCH_LIMIT + 1024 * 1024);

      const before = inflated.bytes();
      const json = await send("/v1/batches", JSON_TYPE, "gzip", bomb);
      expect([json.status, json.body.code]).toEqual([413, "body_too_large"]);
      expect(inflated.bytes() - before).toBeLessThan(BATCH_LIMIT + 1024 * 1024);
    } finally {
      inflated.restore();
    }
  });
});
