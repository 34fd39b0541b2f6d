import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OverloadedError } from "@inferline/contracts";
import { Database, postgresFailure } from "@inferline/db";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";

// A wait for one of the pool's own connections is this process's overload, not PostgreSQL's
// outage: told apart by whether connections were still coming back healthy meanwhile.
let testDb: TestDatabase;
const opened: Database[] = [];
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  for (const db of opened) await db.close().catch(() => {});
  await testDb?.drop();
});

function open(): Database {
  const db = new Database(testDb.url, { poolSize: 1, connectTimeoutMs: 300 });
  opened.push(db);
  return db;
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable("it succeeded"),
    (err: unknown) => err,
  );

describe("a wait for a pool connection", () => {
  it("is OverloadedError (503 overloaded, Retry-After 1) while PostgreSQL answers on the busy connections, through pg and through Prisma", async () => {
    const db = open();
    await db.prisma.tenant.count(); // Prisma's engine started, so its wait is the pool's alone
    // The only connection, held by work that keeps PostgreSQL answering: a statement every 50 ms for 1 s.
    const busy = db.transaction(async (client) => {
      for (let i = 0; i < 20; i++) await client.query("select pg_sleep(0.05)");
    });
    const [direct, viaPrisma] = await Promise.all([
      rejection(db.pool.query("select 1")),
      rejection(db.prisma.tenant.count()),
    ]);
    expect(direct).toBeInstanceOf(OverloadedError);
    expect(direct).toMatchObject({ code: "overloaded", status: 503, retryAfterSeconds: 1 });
    expect(postgresFailure(direct)).toBe("busy"); // workers retry it as any outage
    expect(postgresFailure(viaPrisma)).toBe("busy");
    await busy;
  });

  it("stays PostgreSQL's timeout when nothing came back healthy while it waited (a hung server)", async () => {
    const db = open();
    const client = await db.pool.connect(); // never released: nothing comes back
    try {
      const err = await rejection(db.pool.query("select 1"));
      expect(err).not.toBeInstanceOf(OverloadedError);
      expect(postgresFailure(err)).toBe("timeout");
    } finally {
      client.release();
    }
  });
});
