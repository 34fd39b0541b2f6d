import http from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import express from "express";
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { IRIS_SAMPLES, irisInput, sleepUntil } from "@inferline/testing";
import { loadApiEnv } from "../src/env.ts";
import { LineSplitter, ndjsonLines } from "../src/routes/ndjson.ts";
import { TenantSlots, SlotLease } from "../src/services/tenant-slots.ts";
import { admitBatchUpload } from "../src/middleware/batch-upload-admission.ts";
import { problemHandler } from "../src/problem.ts";

// The parts of batch uploads that need no stack: the NDJSON reader's cost and line cap, the
// upload slots, and the admission middleware's stall guard. The whole path, under hostile or heavy
// input, is end to end in e2e/batch-limits.test.ts.

const itemLine = () => JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] });

const testLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** Settles with `promise`, or fails naming `what` after `ms` (a hang is a failure, not a wait). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("NDJSON reader", () => {
  /** Feeds one line of `bytes` bytes (then a newline) in 64-byte chunks; counts the bytes every indexOf and toString call covered. */
  function workFor(bytes: number) {
    const line = Buffer.from(`{"pad":"${"x".repeat(bytes - 10)}"}`);
    const chunks: Buffer[] = [];
    for (let i = 0; i < line.length; i += 64) chunks.push(line.subarray(i, i + 64));
    chunks.push(Buffer.from("\n"));
    const splitter = new LineSplitter(1024 * 1024);
    const indexOf = vi.spyOn(Buffer.prototype, "indexOf");
    const toString = vi.spyOn(Buffer.prototype, "toString");
    const lines: string[] = [];
    let scanned: number;
    let decoded: number;
    try {
      for (const chunk of chunks) lines.push(...splitter.push(chunk));
      // Bytes from each search's start offset to the end of its buffer, and bytes of each decode.
      scanned = indexOf.mock.calls.reduce(
        (sum, call, i) => sum + (indexOf.mock.contexts[i] as Buffer).length - Number(call[1] ?? 0),
        0,
      );
      decoded = toString.mock.contexts.reduce((sum: number, buf) => sum + (buf as Buffer).length, 0);
    } finally {
      indexOf.mockRestore();
      toString.mockRestore();
    }
    expect(lines).toEqual([line.toString()]);
    return { bytes: line.length + 1, chunks: chunks.length, scanned, decoded, counted: splitter.work };
  }

  it("scans each byte once and decodes a line once, however many chunks it arrives in", () => {
    const small = workFor(200_000);
    const large = workFor(400_000);
    for (const w of [small, large]) {
      expect(w.scanned).toBe(w.bytes); // a quadratic reader rescans its pending text: ~bytes² / 128 here
      expect(w.decoded).toBe(w.bytes - 1);
      expect(w.counted).toEqual({ scannedBytes: w.bytes, decodedBytes: w.bytes - 1 });
    }
    // Twice the bytes, twice the work (not four times).
    expect(large.scanned / small.scanned).toBeCloseTo(large.bytes / small.bytes, 2);
  });

  it("refuses a line over the cap as soon as the cap is passed, naming the line", async () => {
    const limits = { bodyBytes: 10 * 1024 * 1024, lineBytes: 1000 };
    let pulled = 0;
    async function* body() {
      yield Buffer.from(`${itemLine()}\n\n`);
      for (;;) {
        pulled++;
        yield Buffer.alloc(100, 0x61); // endless, and never a newline
      }
    }
    const items = ndjsonLines(Readable.from(body(), { objectMode: false }), undefined, limits);
    expect(await items.next()).toMatchObject({ done: false });
    await expect(items.next()).rejects.toMatchObject({
      code: "line_too_large",
      status: 413,
      message: expect.stringContaining("line 3 "),
    });
    expect(pulled).toBeLessThan(20 + 16); // what Readable.from reads ahead, beyond the 11 chunks that pass 1000 bytes
  });

  it("keeps the other rules: blank lines skipped, bad JSON a 400 naming its line, the body limit a 413, the hash fed every byte", async () => {
    const read = async (text: string, bodyBytes = 1e6) => {
      const out: unknown[] = [];
      for await (const item of ndjsonLines(Readable.from([Buffer.from(text)]), undefined, {
        bodyBytes,
        lineBytes: 1e5,
      }))
        out.push(item);
      return out;
    };
    expect(await read('{"a":1}\n\n  \n{"a":2}')).toEqual([{ a: 1 }, { a: 2 }]);
    await expect(read('{"a":1}\n\n{"a":\n')).rejects.toMatchObject({
      code: "malformed_json",
      status: 400,
      message: expect.stringContaining("line 3 "),
    });
    await expect(read('{"a":1}\n'.repeat(10), 50)).rejects.toMatchObject({ code: "body_too_large", status: 413 });
    const crypto = await import("node:crypto");
    const hash = crypto.createHash("sha256");
    const text = '{"a":"é"}\n{"b":1}';
    const parts = [Buffer.from(text).subarray(0, 7), Buffer.from(text).subarray(7)]; // splits the é
    const items: unknown[] = [];
    for await (const item of ndjsonLines(Readable.from(parts), undefined, { bodyBytes: 1e6, lineBytes: 1e5 }, hash))
      items.push(item);
    expect(items).toEqual([{ a: "é" }, { b: 1 }]);
    expect(hash.digest("hex")).toBe(crypto.createHash("sha256").update(text).digest("hex"));
  });

  it("BATCH_MAX_LINE_BYTES defaults to BODY_LIMIT", () => {
    expect(loadApiEnv({ DATABASE_URL: "postgresql://x/y" }).BATCH_MAX_LINE_BYTES).toBeUndefined();
    expect(() => loadApiEnv({ DATABASE_URL: "postgresql://x/y", BATCH_MAX_LINE_BYTES: "lots" })).toThrow(
      /BATCH_MAX_LINE_BYTES/,
    );
  });
});

describe("upload slots", () => {
  it("a creation over a cap waits for a slot, and is refused by the cap that stayed full", async () => {
    const slots = new TenantSlots({ perProcess: 3, perTenant: 2, waitMs: 60_000 });
    const a1 = await slots.acquire("a");
    const a2 = await slots.acquire("a");
    const b1 = await slots.acquire("b");
    expect([a1, a2, b1].every((l) => l instanceof SlotLease)).toBe(true);
    const a3 = slots.acquire("a");
    const c1 = slots.acquire("c");
    expect(slots.stats()).toEqual({ active: 3, waiting: 2 });
    (b1 as SlotLease).release(); // frees a process slot: "a" is still at its own cap, so "c" gets it
    expect(await c1).toBeInstanceOf(SlotLease);
    (a1 as SlotLease).release();
    expect(await a3).toBeInstanceOf(SlotLease);

    const quick = new TenantSlots({ perProcess: 2, perTenant: 1, waitMs: 20 });
    const held = (await quick.acquire("a")) as SlotLease;
    expect(await quick.acquire("a")).toBe("tenant");
    await quick.acquire("b");
    expect(await quick.acquire("c")).toBe("process");
    const gone = new AbortController();
    const waiting = new TenantSlots({ perProcess: 1, perTenant: 1, waitMs: 60_000 });
    await waiting.acquire("a");
    const aborted = waiting.acquire("b", gone.signal);
    gone.abort();
    expect(await aborted).toBe("aborted");
    expect(waiting.stats()).toEqual({ active: 1, waiting: 0 });
    // A lease frees only when its last holder releases it.
    expect(held.hold()).toBe(true);
    held.release();
    expect(quick.stats().active).toBe(2);
    held.release();
    expect(quick.stats().active).toBe(1);
    expect(held.hold()).toBe(false);
  });
});

describe("upload admission", () => {
  it("a body that stops arriving is answered 408 upload_stalled and frees its slot", async () => {
    const slots = new TenantSlots({ perProcess: 1, perTenant: 1, waitMs: 0 });
    const app = express();
    app.use((req, _res, next) => {
      req.tenant = { id: "t", name: "t", weight: 1, maxQueued: null };
      next();
    });
    app.post("/", admitBatchUpload(slots, 200), async (req, res) => {
      for await (const _ of req.iterator({ destroyOnReturn: false }));
      res.json({ read: true });
    });
    app.use(problemHandler(testLogger));
    const server = http.createServer(app).listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const req = http.request({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        path: "/",
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
      });
      req.on("error", () => {});
      req.write("{}\n");
      const [res] = (await within(once(req, "response"), 10_000, "a stalled body")) as [http.IncomingMessage];
      expect(res.statusCode).toBe(408);
      expect(res.headers.connection).toBe("close");
      res.resume();
      await sleepUntil(() => slots.stats().active === 0, { message: "the stalled upload kept its slot" });
      req.destroy();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
