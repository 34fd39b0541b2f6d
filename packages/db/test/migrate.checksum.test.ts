import crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@inferline/contracts";
import { migrate, MIGRATIONS_DIR } from "@inferline/db";
import { createTestDatabase } from "@inferline/testing";
import { recorded, useScratchMigrations } from "./support/scratch-migrations.ts";

// The runner compares each applied migration's file with the checksum recorded when it ran, and
// refuses to run at all when one changed: the database holds what the old text did, and nothing
// would ever apply the new one.
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

describe("migrate: a migration changed after it was applied", () => {
  const scratch = useScratchMigrations();
  const first = "create table widgets (id int primary key);\n";

  it("records each migration's checksum, refuses with a ConfigError naming the changed one, and applies nothing after it", async () => {
    scratch.write("20270101000000_widgets", first);
    expect(await migrate(scratch.url, scratch.dir)).toEqual(["20270101000000_widgets"]);
    expect(await recorded(scratch.pool())).toEqual([{ name: "20270101000000_widgets", checksum: sha256(first) }]);

    scratch.write("20270101000000_widgets", "create table widgets (id bigint primary key);\n");
    scratch.write("20270102000000_gadgets", "create table gadgets (id int primary key);\n");
    const refused = await migrate(scratch.url, scratch.dir).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toMatch(/^migration 20270101000000_widgets was changed after it was applied \(checksum [0-9a-f]{12}… on disk/);
    expect((await recorded(scratch.pool())).map((r) => r.name)).toEqual(["20270101000000_widgets"]);
    expect((await scratch.pool().query(`select to_regclass('gadgets') as t`)).rows[0].t).toBeNull();

    // Restored as applied (even with converted line endings), the pending one runs.
    scratch.write("20270101000000_widgets", first.replaceAll("\n", "\r\n"));
    expect(await migrate(scratch.url, scratch.dir)).toEqual(["20270102000000_gadgets"]);
  });

  it("accepts a changed file that names the applied text's checksum as one it replaces", async () => {
    scratch.write("20270103000000_sprockets", "create table sprockets (id int);\n");
    expect(await migrate(scratch.url, scratch.dir)).toEqual(["20270103000000_sprockets"]);
    const replaced = sha256("create table sprockets (id int);\n");
    scratch.write("20270103000000_sprockets", `-- inferline: replaces-checksum ${replaced}\ncreate table if not exists sprockets (id int);\n`);
    expect(await migrate(scratch.url, scratch.dir)).toEqual([]);
  });

  it("refuses an unknown directive, naming the migration and the line", async () => {
    scratch.write("20270104000000_typo", "-- inferline: no-transactions\ncreate table typo (id int);\n");
    await expect(migrate(scratch.url, scratch.dir)).rejects.toThrow('migration 20270104000000_typo: unknown directive "-- inferline: no-transactions"');
  });
});

describe("migrate-cli with a changed migration", () => {
  it("exits 1 with one line naming the migration, and leaves the record as it was", async () => {
    const db = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const target = "20261208091000_webhook_previous_secrets";
      await pool.query(`update "_prisma_migrations" set checksum = $1 where migration_name = $2`, ["0".repeat(64), target]);
      const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/migrate-cli.ts");
      const run = spawnSync(process.execPath, ["--import", "tsx", cli], { env: { ...process.env, DATABASE_URL: db.url }, encoding: "utf8", timeout: 30_000 });
      expect(run.status).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(new RegExp(`^inferline migrate: migration ${target} was changed after it was applied`))]);
      const { rows } = await pool.query(`select checksum from "_prisma_migrations" where migration_name = $1`, [target]);
      expect(rows).toEqual([{ checksum: "0".repeat(64) }]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it("a database that applied the model index inside a transaction (its first text) is up to date", async () => {
    const db = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const first = "06f22a065114506b4c7f1c4cb29df9a866ee0c4674b09baf56144c53bea53a64";
      await pool.query(`update "_prisma_migrations" set checksum = $1 where migration_name = '20261208092000_jobs_model_index'`, [first]);
      expect(await migrate(db.url, MIGRATIONS_DIR)).toEqual([]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });
});
