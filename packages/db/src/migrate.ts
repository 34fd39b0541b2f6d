import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { MigrationEnv, parseEnv, redactUrl, ServiceUnavailableError } from "@inferline/contracts";
import { POSTGRES_HINT } from "./database.ts";

/** The committed migrations, in Prisma Migrate's layout. */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../prisma/migrations");

/**
 * The migrations to apply: the MIGRATIONS_DIR variable when set (a bundle, such as the images',
 * runs away from the repository), else the repository's committed ones.
 */
export function migrationsDir(env: NodeJS.ProcessEnv = process.env): string {
  return parseEnv(MigrationEnv, env).MIGRATIONS_DIR ?? MIGRATIONS_DIR;
}

const LOCK_ID = 72_617_301; // arbitrary, fixed: serialises concurrent migrators

/**
 * Applies pending migrations from prisma/migrations and records them in `_prisma_migrations`
 * exactly as `prisma migrate deploy` would. We do it ourselves because Prisma 6.19's offline
 * (JS engine) path cannot run `migrate deploy` against PostgreSQL. Creates the database first
 * when it does not exist. Returns the names of the migrations it applied.
 */
export async function migrate(url: string, dir = migrationsDir()): Promise<string[]> {
  await ensureDatabase(url);
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [LOCK_ID]);
    await client.query(`create table if not exists "_prisma_migrations" (
      id varchar(36) primary key, checksum varchar(64) not null, finished_at timestamptz,
      migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
      started_at timestamptz not null default now(), applied_steps_count integer not null default 0)`);
    const done = new Set((await client.query<{ migration_name: string }>(`select migration_name from "_prisma_migrations" where finished_at is not null`)).rows.map((r) => r.migration_name));
    const applied: string[] = [];
    for (const name of pendingMigrations(dir, done)) {
      const sql = fs.readFileSync(path.join(dir, name, "migration.sql"), "utf8");
      await client.query("begin");
      await client.query(sql);
      await client.query(`insert into "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) values ($1, $2, now(), $3, 1)`, [
        crypto.randomUUID(),
        crypto.createHash("sha256").update(sql).digest("hex"),
        name,
      ]);
      await client.query("commit");
      applied.push(name);
    }
    return applied;
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    await client.query("select pg_advisory_unlock($1)", [LOCK_ID]).catch(() => {});
    await client.end();
  }
}

function pendingMigrations(dir: string, done: Set<string>): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort()
    .filter((name) => !done.has(name));
}

/** Creates the URL's database through the server's `postgres` database when it is missing. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    const reason = (err as { code?: string }).code ?? (err as Error).message;
    throw new ServiceUnavailableError("postgres_unreachable", `PostgreSQL is not reachable at ${redactUrl(url)} (${reason}); ${POSTGRES_HINT}`);
  }
  try {
    const exists = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (exists.rowCount === 0) await client.query(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}
