import crypto from "node:crypto";
import pg from "pg";
import { DEFAULT_DATABASE_URL } from "@inferline/contracts";
import { assertPostgresReachable, migrate } from "@inferline/db";
import { assertRedisReachable } from "@inferline/queue";
import { DEFAULT_REDIS_URL } from "@inferline/contracts";

/**
 * Runs once per test run: migrates a template database that every test file clones (graphile
 * worker's pattern: a clone is much faster than migrating), and drops it at the end.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const base = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  await assertPostgresReachable(adminUrl(base));
  await assertRedisReachable(process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL);
  await dropStaleTestDatabases(adminUrl(base));
  const name = `inferline_test_tpl_${Date.now()}_${crypto.randomBytes(4).toString("hex")}`;
  const url = withDatabase(base, name);
  await migrate(url);
  process.env.INFERLINE_TEST_TEMPLATE_URL = url;
  return async () => {
    const client = new pg.Client({ connectionString: adminUrl(base) });
    await client.connect();
    await client.query(`drop database if exists "${name}" with (force)`);
    await client.end();
  };
}

/** Test databases carry their creation time in their name; a killed run's leftovers are dropped after a day. */
const STALE_MS = 24 * 3600 * 1000;

async function dropStaleTestDatabases(admin: string): Promise<void> {
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname ~ '^inferline_test_(tpl_)?[0-9]{13}_'`,
    );
    for (const { datname } of rows) {
      const created = Number(/_(\d{13})_/.exec(datname)?.[1]);
      if (Date.now() - created > STALE_MS) await client.query(`drop database if exists "${datname}" with (force)`);
    }
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export function adminUrl(url: string): string {
  return withDatabase(url, "postgres");
}
