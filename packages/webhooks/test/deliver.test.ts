import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, WebhookEventStore } from "@inferline/db";
import { deliverEvent } from "@inferline/webhooks";
// Not a dependency of this package: it resolves through the workspace root (as in packages/db's tests).
import { createTestDatabase, type TestDatabase } from "@inferline/testing";

// One delivery attempt against a real receiver on loopback and a real database: whatever bytes
// the receiver answers with are recorded, so its answer settles the event.

let testDb: TestDatabase;
let db: Database;
let store: WebhookEventStore;
let receiver: http.Server;
let baseUrl: string;
/** What each path answers: status and raw body bytes. */
const answers = new Map<string, { status: number; body: Buffer }>();
const hits = new Map<string, number>();

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = new Database(testDb.url, { poolSize: 2 });
  store = new WebhookEventStore(db.pool);
  receiver = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const path = req.url ?? "/";
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const answer = answers.get(path) ?? { status: 200, body: Buffer.alloc(0) };
      res.writeHead(answer.status, { "content-type": "text/plain" }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await db?.close();
  await testDb?.drop();
});

/** A pending event of a new tenant whose receiver answers `status` with `body` at a path of its own; returns its id. */
async function eventAnswered(status: number, body: Buffer): Promise<string> {
  const path = `/${crypto.randomUUID()}`;
  answers.set(path, { status, body });
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_dGVzdA==') returning id`,
    [`tenant-${crypto.randomUUID()}`],
  );
  const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
  await store.insert([
    {
      id,
      tenantId: rows[0]!.id,
      jobId: null,
      batchId: null,
      type: "batch.completed",
      url: `${baseUrl}${path}`,
      payload: "{}",
    },
  ]);
  return id;
}

async function eventRow(id: string) {
  const { rows } = await db.pool.query<{ status: string; attempts: number; url: string }>(
    `select status, attempts, url from webhook_events where id = $1`,
    [id],
  );
  return rows[0]!;
}

async function attemptsOf(id: string) {
  const { rows } = await db.pool.query<{ statusCode: number; responseBody: string; error: string | null }>(
    `select "statusCode", "responseBody", error from webhook_deliveries where "eventId" = $1 order by attempt`,
    [id],
  );
  return rows;
}

const options = { allowPrivate: true, schedule: [0, 60_000] };

/** NUL, bytes that are no UTF-8 (a lone continuation, a truncated sequence), an encoded surrogate (ED A0 80), then text. */
const HOSTILE = Buffer.concat([
  Buffer.from("ok"),
  Buffer.from([0x00, 0x80, 0xff, 0xc3, 0xed, 0xa0, 0x80, 0x00]),
  Buffer.from(" done \u{1F600}"),
]);

describe("deliverEvent with a receiver's hostile answer", () => {
  it("records a 2xx whose body holds NUL, invalid UTF-8 and an encoded surrogate, and the event is delivered: not sent again", async () => {
    const id = await eventAnswered(200, HOSTILE);
    const result = await deliverEvent(store, id, options);
    expect(result).toMatchObject({ outcome: "delivered", attempt: 1, statusCode: 200 });
    expect(await eventRow(id)).toMatchObject({ status: "delivered", attempts: 1 });
    const [attempt] = await attemptsOf(id);
    expect(attempt!.statusCode).toBe(200);
    expect(attempt!.responseBody).not.toContain("\u0000");
    expect(attempt!.responseBody.startsWith("ok\ufffd")).toBe(true);
    expect(attempt!.responseBody.endsWith(" done \u{1F600}")).toBe(true);
    // Settled: another automatic attempt finds nothing to send.
    expect(await deliverEvent(store, id, options)).toEqual({ outcome: "skipped" });
    expect(hits.get(new URL((await eventRow(id)).url).pathname)).toBe(1);
  });

  it("records a failed answer with such a body as a failure to retry, not an error", async () => {
    const id = await eventAnswered(500, HOSTILE);
    expect(await deliverEvent(store, id, options)).toMatchObject({ outcome: "retry", attempt: 1, statusCode: 500 });
    expect(await eventRow(id)).toMatchObject({ status: "pending", attempts: 1 });
    expect((await attemptsOf(id))[0]).toMatchObject({ statusCode: 500, error: "receiver answered 500" });
  });

  it("reads and records at most 4 KiB of a huge answer, cut inside a character or not", async () => {
    // 3-byte characters after one ASCII byte: the 4096th byte falls inside one.
    const id = await eventAnswered(200, Buffer.concat([Buffer.from("x"), Buffer.from("\u20ac".repeat(400_000))]));
    expect(await deliverEvent(store, id, options)).toMatchObject({ outcome: "delivered" });
    const [attempt] = await attemptsOf(id);
    expect(Buffer.byteLength(attempt!.responseBody)).toBeLessThanOrEqual(4096 + 2);
    expect(attempt!.responseBody.startsWith("x\u20ac")).toBe(true);
  });
});

describe("deliverEvent's retry schedule", () => {
  it("counts only automatic attempts: manual redeliveries in between leave the event its whole schedule", async () => {
    const id = await eventAnswered(500, Buffer.from("down"));
    const schedule = { ...options, schedule: [0, 10, 10] };
    expect(await deliverEvent(store, id, schedule)).toMatchObject({ outcome: "retry", attempt: 1 });
    // The tenant redelivers twice while the receiver is still down.
    expect(await deliverEvent(store, id, schedule, { manual: true })).toMatchObject({
      outcome: "manual_failed",
      attempt: 2,
    });
    expect(await deliverEvent(store, id, schedule, { manual: true })).toMatchObject({
      outcome: "manual_failed",
      attempt: 3,
    });
    // The second and third automatic attempts are still the schedule's.
    expect(await deliverEvent(store, id, schedule)).toMatchObject({ outcome: "retry", attempt: 4 });
    expect(await deliverEvent(store, id, schedule)).toMatchObject({ outcome: "failed", attempt: 5 });
    expect(await eventRow(id)).toMatchObject({ status: "failed", attempts: 5 });
  });
});
