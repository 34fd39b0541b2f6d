import crypto from "node:crypto";
import pg from "pg";
import { adminUrl, withDatabase } from "./global-setup.ts";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file, cloned from the run's migrated template (with `empty`, one
 * without any table, for migrations to run on).
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const template = process.env.INFERLINE_TEST_TEMPLATE_URL;
  if (!template)
    throw new Error(
      "INFERLINE_TEST_TEMPLATE_URL is unset: run tests through vitest with the root config (globalSetup)",
    );
  const templateName = new URL(template).pathname.slice(1);
  const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl(template) });
  await admin.connect();
  try {
    await admin.query(`create database "${name}" template "${options.empty ? "template0" : templateName}"`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(template, name),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl(template) });
      await c.connect();
      await c.query(`drop database if exists "${name}" with (force)`);
      await c.end();
    },
  };
}
