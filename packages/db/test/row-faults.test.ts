import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { Database, isRowFault } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";

const database = useTestDatabase({ statementTimeoutMs: 200 });

/** The error a statement fails with (every statement here is meant to fail). */
async function failure(sql: string, params: unknown[] = [], db: Database = database()): Promise<unknown> {
  return db.pool.query(sql, params).then(
    () => expect.unreachable(`${sql} succeeded`),
    (err: unknown) => err,
  );
}

describe("isRowFault", () => {
  it("holds for what one row's data did (SQLSTATE classes 22 and 23), as PostgreSQL reports it", async () => {
    const id = crypto.randomUUID();
    await database().pool.query(
      `insert into tenants (id, name, "webhookSecret") values ($1::uuid, $1::text, 'whsec_x')`,
      [id],
    );
    const faults: Array<[string, unknown]> = [
      ["22P05", await failure(`select '"\\u0000"'::jsonb`)], // NUL in a JSON document
      ["22021", await failure(`select $1::text`, ["nul\u0000"])], // NUL in a text parameter
      ["22P02", await failure(`select $1::jsonb`, [JSON.stringify({ s: "lone \ud800" })])], // a lone surrogate, as JSON.stringify escapes it
      ["22P02", await failure(`select $1::uuid`, ["not-a-uuid"])],
      ["22003", await failure(`select 2147483647::int + 1`)],
      [
        "23505",
        await failure(`insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, 'whsec_x')`, [
          id,
        ]),
      ],
      [
        "23502",
        await failure(`insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), $1, null)`, [
          crypto.randomUUID(),
        ]),
      ],
    ];
    for (const [code, err] of faults) {
      expect(err).toMatchObject({ code });
      expect(isRowFault(err), code).toBe(true);
    }
  });

  it("does not hold for the database's own failures, nor for what is not a PostgreSQL error", async () => {
    const others: Array<[string, unknown]> = [
      ["57014", await failure(`select pg_sleep(5)`)], // statement_timeout: every row would fail again
      ["42601", await failure(`selec 1`)],
      ["42P01", await failure(`select * from no_such_table`)],
    ];
    for (const [code, err] of others) {
      expect(err).toMatchObject({ code });
      expect(isRowFault(err), code).toBe(false);
    }
    // Prisma reports a unique violation with its own code: the group statements that retry row by row are raw pg.
    const name = crypto.randomUUID();
    await database().prisma.tenant.create({ data: { name, webhookSecret: "whsec_x" } });
    const prismaUnique = await database()
      .prisma.tenant.create({ data: { name, webhookSecret: "whsec_x" } })
      .catch((e: unknown) => e);
    expect(prismaUnique).toMatchObject({ code: "P2002" });
    expect(isRowFault(prismaUnique)).toBe(false);
    for (const value of [undefined, null, "23505", 23505, { code: 23505 }, new Error("22P05")])
      expect(isRowFault(value)).toBe(false);
  });
});
