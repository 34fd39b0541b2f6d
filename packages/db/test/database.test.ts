import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, inTransaction, type DatabaseOptions } from "@inferline/db";
import { createTestDatabase, sleepUntil, type TestDatabase } from "@inferline/testing";

// Pools of one connection, so that "the same connection" and "a new connection" can be told apart.
let testDb: TestDatabase;
const opened: Database[] = [];
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  for (const db of opened) await db.close();
  await testDb?.drop();
});

function open(options: DatabaseOptions = {}): Database {
  const db = new Database(testDb.url, { poolSize: 1, ...options });
  opened.push(db);
  return db;
}

async function tenantExists(db: Database, id: string): Promise<boolean> {
  return (await db.pool.query(`select 1 from tenants where id = $1`, [id])).rowCount === 1;
}

const insertTenant = (q: { query: (sql: string, params: unknown[]) => Promise<unknown> }, id: string) =>
  q.query(`insert into tenants (id, name, "webhookSecret") values ($1::uuid, $1::text, 'whsec_x')`, [id]);

describe("Database", () => {
  it("answers a ping, and serves Prisma and raw statements from one pool", async () => {
    const db = open();
    await expect(db.ping()).resolves.toBeUndefined();
    const id = crypto.randomUUID();
    await insertTenant(db.pool, id);
    expect(await db.prisma.tenant.findUnique({ where: { id }, select: { name: true } })).toEqual({ name: id });
    expect(db.pool.totalCount).toBe(1);
  });

  it("survives the server ending an idle pooled connection, telling onConnectionError", async () => {
    const errors: Error[] = [];
    const db = open({ onConnectionError: (err) => errors.push(err) });
    const [idle] = (await db.pool.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows;
    await open().pool.query(`select pg_terminate_backend($1)`, [idle!.pid]);
    await sleepUntil(() => errors.length > 0, { message: "onConnectionError was never called" });
    expect(errors[0]).toMatchObject({ code: "57P01" });
    await expect(db.ping()).resolves.toBeUndefined(); // on a new connection
  });

  it("commits a transaction's statements together and returns what the callback returned", async () => {
    const db = open();
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    const result = await db.transaction(async (client) => {
      await insertTenant(client, a);
      await insertTenant(client, b);
      return "done";
    });
    expect(result).toBe("done");
    expect([await tenantExists(db, a), await tenantExists(db, b)]).toEqual([true, true]);
  });

  it("rolls back when the callback throws, rethrows its error, and hands the connection back clean", async () => {
    const db = open();
    const id = crypto.randomUUID();
    const failure = new Error("abandon");
    await expect(
      db.transaction(async (client) => {
        await insertTenant(client, id);
        throw failure;
      }),
    ).rejects.toBe(failure);
    // The pool's only connection: had it stayed inside the transaction, it would see its own insert.
    expect(db.pool.totalCount).toBe(1);
    expect(await tenantExists(db, id)).toBe(false);
  });

  it("rolls back when a statement fails, whatever the callback did with the error", async () => {
    const db = open();
    const id = crypto.randomUUID();
    const err = await db
      .transaction(async (client) => {
        await insertTenant(client, id);
        await insertTenant(client, id); // 23505
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "23505" });
    expect(await tenantExists(db, id)).toBe(false);
  });
});

describe("inTransaction", () => {
  it("discards a connection the server ended instead of handing it to the next caller", async () => {
    const db = open();
    await db.ping();
    const [before] = (await db.pool.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows;
    const err = await inTransaction(db.pool, (client) =>
      client.query(`select pg_terminate_backend(pg_backend_pid())`),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "57P01" });
    expect(db.pool.totalCount).toBe(0);

    // The next transaction gets a new connection, and works.
    const id = crypto.randomUUID();
    await inTransaction(db.pool, (client) => insertTenant(client, id));
    expect(await tenantExists(db, id)).toBe(true);
    const [after] = (await db.pool.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows;
    expect(after!.pid).not.toBe(before!.pid);
  });
});
