import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, isPostgresUnavailable, postgresFailure, type DatabaseOptions } from "@inferline/db";
import { createTestDatabase, freePort, type TestDatabase } from "@inferline/testing";

// Real failures of real connections, each classified as the API's 503 and the workers' retries
// need: through pg directly and through Prisma's adapter, which wraps them differently.
let testDb: TestDatabase;
const opened: Database[] = [];
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  for (const db of opened) await db.close().catch(() => {});
  await testDb?.drop();
});

function open(options: DatabaseOptions, url = testDb.url): Database {
  const db = new Database(url, { poolSize: 2, ...options });
  opened.push(db);
  return db;
}

/** What a promise that must fail rejects with. */
function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("it succeeded"),
    (err: unknown) => err,
  );
}

describe("postgresFailure", () => {
  it("calls a statement past statement_timeout (57014) a timeout, through pg and through Prisma", async () => {
    const db = open({ statementTimeoutMs: 100 });
    const pgError = await rejection(db.pool.query(`select pg_sleep(5)`));
    expect(pgError).toMatchObject({ code: "57014" });
    expect(postgresFailure(pgError)).toBe("timeout");
    expect(postgresFailure(await rejection(db.prisma.$queryRaw`select pg_sleep(5)`))).toBe("timeout");
  });

  it("calls a query the client gave up on (query_timeout, a hung server) a timeout", async () => {
    const db = open({ statementTimeoutMs: 0, queryTimeoutMs: 100 });
    const err = await rejection(db.pool.query(`select pg_sleep(5)`));
    expect((err as Error).message).toMatch(/^Query read timeout/);
    expect(postgresFailure(err)).toBe("timeout");
  });

  it("calls a session the server ended (57P01) terminated, through pg and through Prisma", async () => {
    const db = open({});
    const pgError = await rejection(db.pool.query(`select pg_terminate_backend(pg_backend_pid())`));
    expect(pgError).toMatchObject({ code: "57P01" });
    expect(postgresFailure(pgError)).toBe("terminated");
    expect(postgresFailure(await rejection(db.prisma.$queryRaw`select pg_terminate_backend(pg_backend_pid())`))).toBe(
      "terminated",
    );
  });

  it("calls a server nobody listens for unreachable, through pg and through Prisma", async () => {
    const url = Object.assign(new URL(testDb.url), { port: String(await freePort()) }).toString();
    const db = open({}, url);
    const pgError = await rejection(db.ping());
    expect(pgError).toMatchObject({ code: "ECONNREFUSED" });
    expect(postgresFailure(pgError)).toBe("unreachable");
    expect(postgresFailure(await rejection(db.prisma.tenant.count()))).toBe("unreachable");
  });

  it("calls a server that accepts connections but never answers a timeout", async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const url = Object.assign(new URL(testDb.url), {
        port: String((silent.address() as net.AddressInfo).port),
      }).toString();
      const db = open({ connectTimeoutMs: 200 }, url);
      const err = await rejection(db.ping());
      expect(postgresFailure(err)).toBe("timeout");
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("calls a closed pool terminated", async () => {
    const db = new Database(testDb.url, { poolSize: 1 });
    await db.close();
    expect(postgresFailure(await rejection(db.ping()))).toBe("terminated");
  });

  it("finds nothing wrong with PostgreSQL in a request's own faults", async () => {
    const db = open({});
    const name = `t-${Date.now()}`;
    await db.pool.query(`insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_x')`, [
      name,
    ]);
    const faults = [
      await rejection(
        db.pool.query(`insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_x')`, [
          name,
        ]),
      ), // 23505
      await rejection(db.pool.query(`select '"\\u0000"'::jsonb`)), // 22P05
      await rejection(db.pool.query(`selec 1`)), // 42601
      await rejection(db.prisma.tenant.create({ data: { name, webhookSecret: "whsec_x" } })), // P2002
      await rejection(db.prisma.$queryRaw`select 1/0`), // P2010 over 22012
      new Error("something else"),
    ];
    for (const err of faults) {
      expect(postgresFailure(err), String(err)).toBeUndefined();
      expect(isPostgresUnavailable(err)).toBe(false);
    }
  });
});
