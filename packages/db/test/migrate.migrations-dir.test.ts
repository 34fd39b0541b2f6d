import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "@inferline/contracts";
import { migrate, migrationsDir, MIGRATIONS_DIR } from "@inferline/db";

// The images keep their migrations in /app/migrations and say so in MIGRATIONS_DIR: every caller
// that names no folder (the migrate entry, `inferline keys create`, `pnpm start`) must apply those.
const INIT = "20261126150000_init";
const template = process.env.INFERLINE_TEST_TEMPLATE_URL!;
const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
const url = Object.assign(new URL(template), { pathname: `/${name}` }).toString();
const adminUrl = Object.assign(new URL(template), { pathname: "/postgres" }).toString();
const initOnly = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-migrations-"));
fs.cpSync(path.join(MIGRATIONS_DIR, INIT), path.join(initOnly, INIT), { recursive: true });

afterEach(() => {
  delete process.env.MIGRATIONS_DIR;
});

afterAll(async () => {
  fs.rmSync(initOnly, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

describe("the migrations folder", () => {
  it("is the repository's prisma/migrations unless MIGRATIONS_DIR names another", () => {
    expect(migrationsDir()).toBe(MIGRATIONS_DIR);
    expect(fs.existsSync(path.join(MIGRATIONS_DIR, INIT, "migration.sql"))).toBe(true);
    process.env.MIGRATIONS_DIR = initOnly;
    expect(migrationsDir()).toBe(initOnly);
  });

  it("is where migrate() reads when no folder is given", async () => {
    process.env.MIGRATIONS_DIR = initOnly;
    expect(await migrate(url)).toEqual([INIT]);
  });

  it("refuses an empty MIGRATIONS_DIR, naming it", () => {
    process.env.MIGRATIONS_DIR = "";
    expect(() => migrationsDir()).toThrow(ConfigError);
    expect(() => migrationsDir()).toThrow(/MIGRATIONS_DIR/);
  });
});
