import crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@inferline/contracts";
import { migrate, MIGRATIONS_DIR } from "@inferline/db";
import { createTestDatabase } from "@inferline/testing";
import { recorded, tableExists, useScratchMigrations } from "./support/scratch-migrations.ts";

// The runner compares each applied migration's file with the checksum recorded when it ran, and
// refuses to run at all when one changed: the database holds what the old text did, and nothing
// would ever apply the new one.
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/migrate-cli.ts");

/** Sets the checksum `_prisma_migrations` records for a migration of a template clone. */
async function recordChecksum(pool: pg.Pool, migration: string, checksum: string): Promise<void> {
  await pool.query(`update "_prisma_migrations" set checksum = $1 where migration_name = $2`, [checksum, migration]);
}

describe("migrate: a migration changed after it was applied", () => {
  const scratch = useScratchMigrations();
  const run = () => migrate(scratch.url, scratch.dir);
  const first = "create table widgets (id int primary key);\n";

  it("records checksums, refuses with a ConfigError naming the changed migration, applies nothing after it", async () => {
    scratch.write("20270101000000_widgets", first);
    expect(await run()).toEqual(["20270101000000_widgets"]);
    expect(await recorded(scratch.pool())).toEqual([{ name: "20270101000000_widgets", checksum: sha256(first) }]);

    scratch.write("20270101000000_widgets", "create table widgets (id bigint primary key);\n");
    scratch.write("20270102000000_gadgets", "create table gadgets (id int primary key);\n");
    const refused = await run().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConfigError);
    const changed =
      /^migration 20270101000000_widgets was changed after it was applied \(checksum [0-9a-f]{12}… on disk/;
    expect((refused as Error).message).toMatch(changed);
    expect((await recorded(scratch.pool())).map((r) => r.name)).toEqual(["20270101000000_widgets"]);
    expect(await tableExists(scratch.pool(), "gadgets")).toBe(false);

    // Restored as applied (even with converted line endings), the pending one runs.
    scratch.write("20270101000000_widgets", first.replaceAll("\n", "\r\n"));
    expect(await run()).toEqual(["20270102000000_gadgets"]);
  });

  it("accepts a changed file that names the applied text's checksum as one it replaces", async () => {
    const applied = "create table sprockets (id int);\n";
    scratch.write("20270103000000_sprockets", applied);
    expect(await run()).toEqual(["20270103000000_sprockets"]);
    const changed = `-- inferline: replaces-checksum ${sha256(applied)}\ncreate table if not exists sprockets (id int);\n`;
    scratch.write("20270103000000_sprockets", changed);
    expect(await run()).toEqual([]);
  });

  it("refuses an unknown directive, naming the migration and the line", async () => {
    scratch.write("20270104000000_typo", "-- inferline: no-transactions\ncreate table typo (id int);\n");
    await expect(run()).rejects.toThrow(
      'migration 20270104000000_typo: unknown directive "-- inferline: no-transactions"',
    );
  });
});

describe("migrate-cli with a changed migration", () => {
  it("exits 1 with one line naming the migration, and leaves the record as it was", async () => {
    const db = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const target = "20261208091000_webhook_previous_secrets";
      await recordChecksum(pool, target, "0".repeat(64));
      const env = { ...process.env, DATABASE_URL: db.url };
      const run = spawnSync(process.execPath, ["--import", "tsx", CLI], { env, encoding: "utf8", timeout: 30_000 });
      expect(run.status).toBe(1);
      expect(run.stdout).toBe("");
      const line = new RegExp(`^inferline migrate: migration ${target} was changed after it was applied`);
      expect(run.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(line)]);
      const { rows } = await pool.query(`select checksum from "_prisma_migrations" where migration_name = $1`, [
        target,
      ]);
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
      const firstText = "06f22a065114506b4c7f1c4cb29df9a866ee0c4674b09baf56144c53bea53a64";
      await recordChecksum(pool, "20261208092000_jobs_model_index", firstText);
      expect(await migrate(db.url, MIGRATIONS_DIR)).toEqual([]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });
});
