import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, MIGRATIONS_DIR } from "@inferline/db";

// A database migrated up to the migration before the list of previous webhook secrets, with
// tenants in the single-previous-secret layout, then migrated to the latest: a previous secret
// still signing must carry over with its expiry.
const MIGRATION = "20261208091000_webhook_previous_secrets";
const template = process.env.INFERLINE_TEST_TEMPLATE_URL!;
const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
const url = Object.assign(new URL(template), { pathname: `/${name}` }).toString();
const adminUrl = Object.assign(new URL(template), { pathname: "/postgres" }).toString();
let before: string;
let pool: pg.Pool;

beforeAll(async () => {
  before = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-migrations-"));
  for (const dir of fs.readdirSync(MIGRATIONS_DIR).filter((d) => /^\d{14}_/.test(d) && d < MIGRATION)) {
    fs.cpSync(path.join(MIGRATIONS_DIR, dir), path.join(before, dir), { recursive: true });
  }
  await migrate(url, before);
  pool = new pg.Pool({ connectionString: url, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  fs.rmSync(before, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

describe("migration to a list of previous webhook secrets", () => {
  it("carries a previous secret still signing over with its expiry, and drops an expired one", async () => {
    const [rolling, expired, never] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    await pool.query(
      `insert into tenants (id, name, "webhookSecret", "previousWebhookSecret", "previousSecretExpiresAt") values
         ($1, 'rolling', 'whsec_new', 'whsec_old', '2100-01-01T00:00:00Z'),
         ($2, 'expired', 'whsec_new', 'whsec_old', now() - interval '1 hour'),
         ($3, 'never', 'whsec_only', null, null)`,
      [rolling, expired, never],
    );
    expect(await migrate(url)).toContain(MIGRATION);

    const { rows } = await pool.query<{
      id: string;
      webhookSecret: string;
      previous: Array<{ secret: string; expiresAt: string }>;
    }>(`select id, "webhookSecret", "previousWebhookSecrets" as previous from tenants`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(rolling)?.webhookSecret).toBe("whsec_new");
    expect(byId.get(rolling)?.previous).toEqual([{ secret: "whsec_old", expiresAt: expect.any(String) }]);
    expect(Date.parse(byId.get(rolling)!.previous[0]!.expiresAt)).toBe(Date.parse("2100-01-01T00:00:00Z"));
    expect(byId.get(expired)?.previous).toEqual([]);
    expect(byId.get(never)?.previous).toEqual([]);
    const { rows: columns } = await pool.query(
      `select column_name from information_schema.columns where table_name = 'tenants' and column_name like 'previous%'`,
    );
    expect(columns).toEqual([{ column_name: "previousWebhookSecrets" }]);
  });
});
