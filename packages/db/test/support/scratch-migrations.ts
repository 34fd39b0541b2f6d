import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll } from "vitest";

/**
 * An empty database of its own (migrate() creates it) and a folder of migrations a test writes,
 * both removed in afterAll. For the migration runner's tests, which need migrations of their own
 * rather than the run's migrated template.
 */
export interface ScratchMigrations {
  url: string;
  dir: string;
  /** Writes `<dir>/<name>/migration.sql`. */
  write(name: string, sql: string): void;
  /** A pg.Pool on the database, closed in afterAll. */
  pool(): pg.Pool;
}

/** The template's URL with another database name. */
function withDatabase(name: string): string {
  return Object.assign(new URL(process.env.INFERLINE_TEST_TEMPLATE_URL!), { pathname: `/${name}` }).toString();
}

export function useScratchMigrations(): ScratchMigrations {
  const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-migrations-"));
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
    fs.rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: withDatabase("postgres") });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  return {
    url: withDatabase(name),
    dir,
    write(migration, sql) {
      fs.mkdirSync(path.join(dir, migration), { recursive: true });
      fs.writeFileSync(path.join(dir, migration, "migration.sql"), sql);
    },
    pool: () => (pool ??= new pg.Pool({ connectionString: withDatabase(name), max: 3 })),
  };
}

/** The migrations `_prisma_migrations` records as applied, in name order, with their checksums. */
export async function recorded(pool: pg.Pool): Promise<Array<{ name: string; checksum: string }>> {
  const { rows } = await pool.query<{ name: string; checksum: string }>(
    `select migration_name as name, checksum from "_prisma_migrations"
      where finished_at is not null order by migration_name`,
  );
  return rows;
}

/** Whether an index exists, and whether it is valid. */
export async function indexState(pool: pg.Pool, name: string): Promise<"valid" | "invalid" | "missing"> {
  const { rows } = await pool.query<{ valid: boolean }>(
    `select indisvalid as valid from pg_index
      where indexrelid = to_regclass($1)`,
    [name],
  );
  if (rows[0] === undefined) return "missing";
  return rows[0].valid ? "valid" : "invalid";
}

/** Whether a table exists. */
export async function tableExists(pool: pg.Pool, name: string): Promise<boolean> {
  const { rows } = await pool.query<{ found: string | null }>(`select to_regclass($1)::text as found`, [name]);
  return rows[0]?.found !== null;
}
