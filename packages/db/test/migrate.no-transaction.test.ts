import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { migrate } from "@inferline/db";
import { indexState, recorded, tableExists, useScratchMigrations } from "./support/scratch-migrations.ts";

// `-- inferline: no-transaction`: the statements run one by one outside a transaction (CREATE
// INDEX CONCURRENTLY cannot run inside one), still under the migrators' lock, and the migration
// is recorded only once every statement succeeded and every index it builds is valid.
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");
const noTransaction = (...statements: string[]) => ["-- inferline: no-transaction", ...statements, ""].join("\n");

describe("migrate: a no-transaction migration", () => {
  const scratch = useScratchMigrations();
  const run = () => migrate(scratch.url, scratch.dir);

  it("runs its statements outside a transaction, semicolons in comments and strings aside, and records it", async () => {
    scratch.write("20270101000000_parts", "create table parts (id int primary key, sku text, note text);\n");
    const sql = noTransaction(
      "-- Builds without blocking writes; a comment may say a; b.",
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS "parts_sku_idx" ON parts (sku);`,
      `COMMENT ON INDEX "parts_sku_idx" IS 'by sku; for lookups';`,
      "/* a block comment; with a semicolon */",
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS "parts_note_idx" ON parts (note) WHERE note <> $$;$$;`,
    );
    scratch.write("20270102000000_parts_indexes", sql);
    expect(await run()).toEqual(["20270101000000_parts", "20270102000000_parts_indexes"]);
    const pool = scratch.pool();
    expect(await indexState(pool, "parts_sku_idx")).toBe("valid");
    expect(await indexState(pool, "parts_note_idx")).toBe("valid");
    const { rows } = await pool.query(`select obj_description('parts_sku_idx'::regclass) as c`);
    expect(rows[0].c).toBe("by sku; for lookups");
    expect((await recorded(pool)).at(-1)).toEqual({ name: "20270102000000_parts_indexes", checksum: sha256(sql) });
    // Recorded: the next run has nothing to do.
    expect(await run()).toEqual([]);
  });

  it("is not recorded when a statement fails, keeps what ran, and runs to the end once the cause is gone", async () => {
    const table = `CREATE TABLE IF NOT EXISTS bins (id int primary key, label text);`;
    const sql = noTransaction(table, `CREATE INDEX CONCURRENTLY IF NOT EXISTS "crates_label_idx" ON crates (label);`);
    scratch.write("20270103000000_crates_index", sql);
    await expect(run()).rejects.toThrow(
      /^migration 20270103000000_crates_index failed: relation "crates" does not exist/,
    );
    const pool = scratch.pool();
    expect((await recorded(pool)).map((r) => r.name)).not.toContain("20270103000000_crates_index");
    expect(await tableExists(pool, "bins")).toBe(true);

    await pool.query(`create table crates (id int primary key, label text)`);
    expect(await run()).toEqual(["20270103000000_crates_index"]);
    expect(await indexState(pool, "crates_label_idx")).toBe("valid");
  });

  it("is refused while an index it builds is invalid (a failed build), and recorded once it is rebuilt", async () => {
    const pool = scratch.pool();
    await pool.query(`create table tags (id int primary key, code text); insert into tags values (1, 'a'), (2, 'a')`);
    const name = "20270104000000_tags_code_unique";
    scratch.write(
      name,
      noTransaction(`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "tags_code_key" ON tags (code);`),
    );
    // The duplicates fail the build, which leaves an invalid index behind.
    await expect(run()).rejects.toThrow(new RegExp(`^migration ${name} failed: could not create unique index`));
    expect(await indexState(pool, "tags_code_key")).toBe("invalid");
    await pool.query(`delete from tags where id = 2`);
    // The rerun's IF NOT EXISTS skips the invalid index: the runner says so rather than record it.
    const invalid = `migration ${name} left index tags_code_key invalid (a failed CREATE INDEX CONCURRENTLY`;
    await expect(run()).rejects.toThrow(invalid);
    expect((await recorded(pool)).map((r) => r.name)).not.toContain(name);
    await pool.query(`drop index concurrently tags_code_key`);
    expect(await run()).toEqual([name]);
    expect(await indexState(pool, "tags_code_key")).toBe("valid");
  });

  it("refuses a migration that does not parse before running any of it", async () => {
    const sql = noTransaction("CREATE TABLE IF NOT EXISTS shelves (id int);", "CREATE INDEX CONCURRENTLY ON;");
    scratch.write("20270105000000_broken", sql);
    await expect(run()).rejects.toThrow(/^migration 20270105000000_broken does not parse: syntax error/);
    expect(await tableExists(scratch.pool(), "shelves")).toBe(false);
  });
});
