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

export function useScratchMigrations(): ScratchMigrations {
  const template = process.env.INFERLINE_TEST_TEMPLATE_URL!;
  const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
  const url = Object.assign(new URL(template), { pathname: `/${name}` }).toString();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-migrations-"));
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
    fs.rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: Object.assign(new URL(template), { pathname: "/postgres" }).toString() });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  return {
    url,
    dir,
    write(migration, sql) {
      fs.mkdirSync(path.join(dir, migration), { recursive: true });
      fs.writeFileSync(path.join(dir, migration, "migration.sql"), sql);
    },
    pool: () => (pool ??= new pg.Pool({ connectionString: url, max: 3 })),
  };
}

/** The migrations `_prisma_migrations` records as applied, in name order, with their checksums. */
export async function recorded(pool: pg.Pool): Promise<Array<{ name: string; checksum: string }>> {
  const { rows } = await pool.query<{ name: string; checksum: string }>(`select migration_name as name, checksum from "_prisma_migrations" where finished_at is not null order by migration_name`);
  return rows;
}
