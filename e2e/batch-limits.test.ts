import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { newBatchId } from "@inferline/contracts";
import { BatchStore, Database, hashApiKey } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";
import { openPost } from "./support/raw-http.ts";

// Tests of batch creation under hostile or heavy input, end to end: the line cap, all-or-nothing
// creation while items stream into PostgreSQL, upload caps, and queue depth. The NDJSON reader,
// the upload slots and the admission middleware on their own: apps/api/test/batch-upload.test.ts.

const LINE_LIMIT = 64 * 1024;
const QUEUE_LIMIT = 6000;

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({
    worker: false, // queued work stays queued: the depth only grows
    api: {
      BATCH_MAX_LINE_BYTES: String(LINE_LIMIT),
      MAX_BATCH_UPLOADS: "3",
      MAX_BATCH_UPLOADS_PER_TENANT: "2",
      BATCH_UPLOAD_WAIT_MS: "300",
      MAX_QUEUE_DEPTH: String(QUEUE_LIMIT),
    },
  });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const itemLine = (rows = 1) =>
  JSON.stringify({ inputs: [irisInput(Array.from({ length: rows }, () => IRIS_SAMPLES.setosa))] });
const ndjson = (n: number) => Array.from({ length: n }, () => itemLine()).join("\n") + "\n";

/**
 * An NDJSON upload over node:http, whose body the test writes piece by piece (or not at all):
 * `answer` settles as soon as the server answers, whether or not the body was ended.
 */
function openUpload(apiKey: string, query = "model=iris") {
  const url = new URL(`/v1/batches?${query}`, stack.api.url);
  const { req, answer } = openPost(url, { authorization: `Bearer ${apiKey}`, "content-type": "application/x-ndjson" });
  answer.catch(() => {}); // an upload the test aborts never answers
  req.flushHeaders();
  return {
    req,
    answer,
    write: (text: string) => new Promise<void>((resolve) => (req.write(text) ? resolve() : req.once("drain", resolve))),
    abort: () => req.destroy(),
  };
}

/** Settles with `promise`, or fails naming `what` after `ms` (a hang is a failure, not a wait). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function tenantId(apiKey: string): Promise<string> {
  const { rows } = await db.pool.query<{ tenantId: string }>(`select "tenantId" from api_keys where "keyHash" = $1`, [
    hashApiKey(apiKey),
  ]);
  return rows[0]!.tenantId;
}

async function counts(tenant?: string) {
  const one = async (sql: string, params: unknown[] = []) =>
    (await db.pool.query<{ n: number }>(sql, params)).rows[0]!.n;
  return {
    batches: await one(
      `select count(*)::int as n from batches${tenant ? ` where "tenantId" = $1` : ""}`,
      tenant ? [tenant] : [],
    ),
    chunks: await one(`select count(*)::int as n from batch_chunks`),
    dispatches: await one(`select count(*)::int as n from dispatches`),
  };
}

/** Sessions other than ours holding a write lock on `table`: an open transaction that inserted into it. */
async function writersOf(table: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation where c.relname = $1 and l.mode = 'RowExclusiveLock' and l.pid <> pg_backend_pid()`,
    [table],
  );
  return rows[0]!.n;
}

describe("batch creation limits", () => {
  it("a line longer than BATCH_MAX_LINE_BYTES is a 413 line_too_large before the rest of the body is sent", async () => {
    const upload = openUpload(await stack.createKey("long-line"));
    await upload.write(`${itemLine()}\n${itemLine()}\n`);
    const piece = "7".repeat(8 * 1024);
    for (let sent = 0; sent <= LINE_LIMIT; sent += piece.length) await upload.write(piece);
    // The request is never ended: an answer at all shows the server did not wait for the line's end.
    const answer = await within(upload.answer, 10_000, "the server waited for the rest of a line past its cap");
    upload.abort();
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ code: "line_too_large", status: 413 });
    expect(answer.body.detail).toContain("line 3 ");
    expect(answer.headers.connection).toBe("close");
  });

  it("a fault in item 3,000 of an NDJSON batch leaves no batch, chunk or queue entry, though chunks were written as items streamed in", async () => {
    const key = await stack.createKey("faulty");
    const tenant = await tenantId(key);
    const before = await counts();
    // 100 rows per item (~2.5 KB a line): chunks fill the draft's 4 MB statements well before item 3,000.
    const line = itemLine(100);
    const upload = openUpload(key);
    await upload.write(`${line}\n`.repeat(2900));
    // While the body streams, the batch's transaction has inserted chunks, and none is visible.
    await sleepUntil(async () => (await writersOf("batch_chunks")) > 0, {
      timeoutMs: 10_000,
      message: "no chunk was inserted while the body streamed",
    });
    expect(await counts()).toEqual(before);
    const bad = JSON.stringify({ inputs: [{ name: "features", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] });
    await upload.write(`${line}\n`.repeat(99) + `${bad}\n` + `${line}\n`.repeat(2000));
    upload.req.end();
    const answer = await within(upload.answer, 20_000, "the faulty batch");
    expect(answer.status).toBe(422);
    expect(answer.body.errors[0].path).toMatch(/^\/items\/2999\/inputs\/0\/shape/);
    expect(await counts(tenant)).toMatchObject({ batches: 0 });
    expect(await counts()).toEqual(before);
    expect(await writersOf("batch_chunks")).toBe(0); // rolled back, not left open
  });

  it("uploads past the per-tenant cap get 429 while another tenant's succeed; past the process cap 503; a client that leaves frees its slot", async () => {
    const gamma = await stack.createKey("gamma");
    const delta = await stack.createKey("delta");
    const post = (key: string) =>
      stack.alpha.withKey(key).request("POST", "/v1/batches?model=iris", {
        body: ndjson(1),
        headers: { "content-type": "application/x-ndjson" },
      });
    /** Posts until the answer is `status` (the stalled uploads are admitted a moment after they are sent); earlier ones succeed. */
    const postUntil = (key: string, status: number) =>
      sleepUntil(
        async () => {
          const res = await post(key);
          if (res.status !== 202) expect(res.status).toBe(status);
          return res.status === status ? res : undefined;
        },
        { timeoutMs: 10_000, message: `no ${status}` },
      );

    const stalled = [openUpload(gamma), openUpload(gamma)];
    for (const u of stalled) await u.write(`${itemLine()}\n`);
    const limited = await postUntil(gamma, 429);
    expect(limited.body.code).toBe("too_many_batch_uploads");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const other = await post(stack.beta.apiKey!);
    expect(other.status).toBe(202);

    const third = openUpload(delta);
    await third.write(`${itemLine()}\n`);
    const busy = await postUntil(stack.beta.apiKey!, 503);
    expect(busy.body.code).toBe("batch_uploads_busy");
    expect(Number(busy.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    // A client that goes away mid-body frees its slot: gamma can upload again.
    stalled[0]!.abort();
    expect((await postUntil(gamma, 202)).body.total).toBe(1);
    for (const u of [stalled[1]!, third]) u.abort();
    await sleepUntil(async () => (await post(stack.beta.apiKey!)).status === 202, { message: "slots never freed" });
  });

  it("an upload that stalls past the idle-in-transaction guard loses its session and its pooled connection, and reports upload_stalled", async () => {
    const guarded = new Database(stack.db.url, { poolSize: 2 });
    try {
      const store = new BatchStore(guarded.pool, guarded.prisma, { draftIdleTimeoutMs: 200 });
      const tenant = await tenantId(await stack.createKey("stalled"));
      const batch = {
        id: newBatchId(),
        tenantId: tenant,
        model: "iris",
        version: "1",
        priority: "low" as const,
        webhook: null,
        requestedOutputs: [],
        metadata: {},
        idempotencyKey: null,
        queueDeadline: null,
        cancelAt: null,
        createdAt: new Date(),
      };
      const draft = await store.open(batch);
      expect(guarded.pool.totalCount).toBe(1);
      // PostgreSQL ends the idle session; the draft hears it and has the pool discard the connection.
      await sleepUntil(() => guarded.pool.totalCount === 0, {
        timeoutMs: 10_000,
        message: "the stalled draft kept its connection",
      });
      const chunk = {
        id: randomUUID(),
        firstIndex: 0,
        inputs: [[{ name: "features", datatype: "FP32" as const, shape: [1, 4], data: [...IRIS_SAMPLES.setosa] }]],
        customIds: [null],
      };
      await expect(draft.add(chunk)).rejects.toMatchObject({ code: "upload_stalled", status: 408 });
      await draft.rollback();
      expect(await counts(tenant)).toMatchObject({ batches: 0 });
    } finally {
      await guarded.close();
    }
  });

  it("MAX_QUEUE_DEPTH refuses a batch that would exceed it, and one that finds the queue full before its body is read", async () => {
    const key = await stack.createKey("deep");
    const tenant = await tenantId(key);
    const client = stack.alpha.withKey(key);
    const { rows } = await db.pool.query<{ n: number }>(
      `select coalesce(sum(jobs), 0)::int as n from dispatches where model = 'iris'`,
    );
    const room = QUEUE_LIMIT - rows[0]!.n;
    expect(room).toBeGreaterThan(1000);
    const items = (n: number) => Array.from({ length: n }, () => ({ inputs: [irisInput([IRIS_SAMPLES.virginica])] }));

    const json = await client.post("/v1/batches", { model: "iris", items: items(room + 1) });
    expect(json.status).toBe(503);
    expect(json.body.code).toBe("queue_full");
    expect(Number(json.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const streamed = openUpload(key);
    streamed.req.end(ndjson(room + 1));
    expect(await within(streamed.answer, 10_000, "an NDJSON batch past the depth")).toMatchObject({
      status: 503,
      body: { code: "queue_full" },
    });
    expect(await counts(tenant)).toMatchObject({ batches: 0 });

    expect((await client.post("/v1/batches", { model: "iris", items: items(room) })).status).toBe(202);
    // The queue is at its limit now: refused before a byte of the body is sent.
    const late = openUpload(key);
    const answer = await within(late.answer, 10_000, "a batch when the queue is full");
    late.abort();
    expect(answer).toMatchObject({ status: 503, body: { code: "queue_full" } });
    expect(await counts(tenant)).toMatchObject({ batches: 1 });
  });
});
