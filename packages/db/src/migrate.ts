import crypto from "node:crypto";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import {
  ConfigError,
  InferlineError,
  MigrationEnv,
  parseEnv,
  redactUrl,
  ServiceUnavailableError,
} from "@inferline/contracts";
import { POSTGRES_HINT } from "./database.ts";
import { checksumMatches, readMigrations, splitStatements } from "./migration-files.ts";
import type { Migration, QualifiedName } from "./migration-files.ts";

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

/** How often a migrator that finds the lock taken tries again. */
const LOCK_POLL_MS = 250;

/** Names the migrator's session in pg_stat_activity. */
const APPLICATION_NAME = "inferline-migrate";

/**
 * Applies pending migrations from prisma/migrations and records them in `_prisma_migrations`
 * as `prisma migrate deploy` would. We do it ourselves because Prisma 6.19's offline (JS engine)
 * path cannot run `migrate deploy` against PostgreSQL. Creates the database first when it does
 * not exist. Refuses to run (ConfigError) when a migration already applied has changed since.
 * A migration whose opening comments say `-- inferline: no-transaction` runs statement by
 * statement outside a transaction (CREATE INDEX CONCURRENTLY), and is recorded once all its
 * statements succeeded: it must be idempotent (`IF NOT EXISTS`), as a failure part-way leaves
 * what ran and the next run starts it over. Returns the names of the migrations it applied.
 */
export async function migrate(url: string, dir = migrationsDir()): Promise<string[]> {
  await ensureDatabase(url);
  const client = new pg.Client({ connectionString: url, application_name: APPLICATION_NAME });
  client.on("error", () => {});
  await client.connect();
  try {
    await lock(client);
    try {
      return await applyPending(client, readMigrations(dir));
    } finally {
      await client.query("select pg_advisory_unlock($1)", [LOCK_ID]).catch(() => {});
    }
  } finally {
    await client.end();
  }
}

/**
 * Takes the migrators' advisory lock, trying again while another migrator holds it. Never a
 * blocking pg_advisory_lock: a session waiting in one holds a snapshot, and CREATE INDEX
 * CONCURRENTLY in the holder's session waits for every older snapshot of the database, so the
 * two would wait on each other until PostgreSQL's deadlock check killed one of them.
 */
async function lock(client: pg.Client): Promise<void> {
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>("select pg_try_advisory_lock($1) as locked", [LOCK_ID]);
    if (rows[0]?.locked) return;
    await delay(LOCK_POLL_MS);
  }
}

async function applyPending(client: pg.Client, migrations: Migration[]): Promise<string[]> {
  await client.query(`create table if not exists "_prisma_migrations" (
    id varchar(36) primary key, checksum varchar(64) not null, finished_at timestamptz,
    migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
    started_at timestamptz not null default now(), applied_steps_count integer not null default 0)`);
  const recorded = await appliedChecksums(client);
  for (const m of migrations) {
    const checksums = recorded.get(m.name);
    if (checksums && !checksums.some((c) => checksumMatches(m, c))) throw changedAfterApplying(m, checksums);
  }
  const applied: string[] = [];
  for (const m of migrations.filter((m) => !recorded.has(m.name))) {
    try {
      await (m.noTransaction ? applyOutsideTransaction(client, m) : applyInTransaction(client, m));
    } catch (err) {
      if (err instanceof InferlineError) throw err;
      const message = `migration ${m.name} failed: ${(err as Error).message}`;
      throw new InferlineError("migration_failed", message, { cause: err });
    }
    applied.push(m.name);
  }
  return applied;
}

/** The checksums recorded for each applied migration (finished, not rolled back). */
async function appliedChecksums(client: pg.Client): Promise<Map<string, string[]>> {
  const { rows } = await client.query<{ migration_name: string; checksum: string }>(
    `select migration_name, checksum from "_prisma_migrations"
      where finished_at is not null and rolled_back_at is null`,
  );
  const byName = new Map<string, string[]>();
  for (const r of rows) byName.set(r.migration_name, [...(byName.get(r.migration_name) ?? []), r.checksum]);
  return byName;
}

const RESTORE = "restore the applied file and put the change in a new migration";

function changedAfterApplying(m: Migration, recorded: string[]): ConfigError {
  const [now, then] = [m.checksum.slice(0, 12), recorded[0]!.slice(0, 12)];
  const changed = `migration ${m.name} was changed after it was applied`;
  return new ConfigError(`${changed} (checksum ${now}… on disk, ${then}… in _prisma_migrations): ${RESTORE}`);
}

async function applyInTransaction(client: pg.Client, m: Migration): Promise<void> {
  await client.query("begin");
  try {
    await client.query(m.sql);
    await record(client, m);
    await client.query("commit");
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  }
}

const INVALID_INDEX_CAUSE = "a failed CREATE INDEX CONCURRENTLY leaves one behind, which IF NOT EXISTS then skips";
const INVALID_INDEX_FIX = "drop it with DROP INDEX CONCURRENTLY and migrate again";

/** Each statement on its own (in autocommit), then the record: a failure part-way records nothing. */
async function applyOutsideTransaction(client: pg.Client, m: Migration): Promise<void> {
  const statements = await splitStatements(m);
  for (const s of statements) await client.query(s.sql);
  const indexes = statements.flatMap((s) => (s.createsIndex ? [s.createsIndex] : []));
  const invalid = await invalidIndexes(client, indexes);
  if (invalid.length > 0) {
    const left = `migration ${m.name} left index ${invalid.join(", ")} invalid`;
    throw new InferlineError("migration_incomplete", `${left} (${INVALID_INDEX_CAUSE}): ${INVALID_INDEX_FIX}`);
  }
  await record(client, m);
}

/** Those of `indexes` that exist but are not valid (a concurrent build that failed, or one still running elsewhere). */
async function invalidIndexes(client: pg.Client, indexes: QualifiedName[]): Promise<string[]> {
  if (indexes.length === 0) return [];
  const { rows } = await client.query<{ index: string }>(
    `select i.indexrelid::regclass::text as index
       from unnest($1::text[], $2::text[]) as n(schema, name)
       join pg_index i on i.indexrelid = to_regclass(
              case when n.schema is null then format('%I', n.name) else format('%I.%I', n.schema, n.name) end)
      where not i.indisvalid`,
    [indexes.map((i) => i.schema ?? null), indexes.map((i) => i.name)],
  );
  return rows.map((r) => r.index);
}

async function record(client: pg.Client, m: Migration): Promise<void> {
  const insert = `insert into "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
    values ($1, $2, now(), $3, 1)`;
  await client.query(insert, [crypto.randomUUID(), m.checksum, m.name]);
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
    throw new ServiceUnavailableError(
      "postgres_unreachable",
      `PostgreSQL is not reachable at ${redactUrl(url)} (${reason}); ${POSTGRES_HINT}`,
    );
  }
  try {
    const exists = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (exists.rowCount === 0) await client.query(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}
