import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchChunkStore, migrate, MIGRATIONS_DIR } from "@inferline/db";

// A database migrated only to the init migration, with batch items as job rows (the old layout),
// then migrated to the latest: the batch_chunks migration must carry every item over.
const INIT = "20261126150000_init";
const template = process.env.INFERLINE_TEST_TEMPLATE_URL!;
const name = `inferline_test_${Date.now()}_${crypto.randomBytes(5).toString("hex")}`;
const url = Object.assign(new URL(template), { pathname: `/${name}` }).toString();
const adminUrl = Object.assign(new URL(template), { pathname: "/postgres" }).toString();
let initOnly: string;
let pool: pg.Pool;

const TENANT = "00000000-0000-4000-8000-0000000000aa";
const BATCH = "00000000-0000-4000-8000-0000000000bb";

beforeAll(async () => {
  initOnly = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-migrations-"));
  fs.cpSync(path.join(MIGRATIONS_DIR, INIT), path.join(initOnly, INIT), { recursive: true });
  await migrate(url, initOnly);
  pool = new pg.Pool({ connectionString: url, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  fs.rmSync(initOnly, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

describe("migration to batch chunks", () => {
  it("turns a batch's item rows into chunks with their statuses, results and errors, and queues what is unfinished", async () => {
    await pool.query(`insert into tenants (id, name, "webhookSecret") values ($1, 'legacy', 'whsec_x')`, [TENANT]);
    await pool.query(
      `insert into batches (id, "tenantId", model, version, total, remaining) values ($1, $2, 'iris', '1', 600, 598)`,
      [BATCH, TENANT],
    );
    // Item 0 succeeded, item 1 failed, the rest queued; one job outside any batch.
    await pool.query(
      `insert into jobs (id, "tenantId", model, version, inputs, "batchId", "batchIndex", "customId", status, result, "errorCode", "errorMessage")
       select gen_random_uuid(), $1, 'iris', '1', json_build_array(json_build_object('i', i)), $2, i, 'c' || i,
         (case i when 0 then 'succeeded' when 1 then 'failed' else 'queued' end)::"JobStatus",
         case when i = 0 then '{"outputs": []}'::json end, case when i = 1 then 'inference_error' end, case when i = 1 then 'bad' end
       from generate_series(0, 599) as i`,
      [TENANT, BATCH],
    );
    await pool.query(
      `insert into jobs (id, "tenantId", model, version, inputs) values (gen_random_uuid(), $1, 'iris', '1', '[]')`,
      [TENANT],
    );

    expect(await migrate(url)).toEqual(
      fs
        .readdirSync(MIGRATIONS_DIR)
        .filter((d) => /^\d{14}_/.test(d) && d !== INIT)
        .sort(),
    );

    const { rows: chunks } = await pool.query(
      `select "firstIndex", size, succeeded, failed, "completedAt", inputs from batch_chunks where "batchId" = $1 order by "firstIndex"`,
      [BATCH],
    );
    expect(chunks.map((c) => [c.firstIndex, c.size, c.succeeded, c.failed, c.completedAt])).toEqual([
      [0, 512, 1, 1, null],
      [512, 88, 0, 0, null],
    ]);
    expect(chunks[1].inputs[0]).toEqual([{ i: 512 }]);
    const { rows: dispatches } = await pool.query(`select jobs, "batchChunk" from dispatches order by jobs`);
    expect(dispatches).toEqual([
      { jobs: 88, batchChunk: true },
      { jobs: 510, batchChunk: true },
    ]);
    expect((await pool.query(`select count(*)::int as n from jobs`)).rows[0].n).toBe(1);

    // Each item as the results stream shows it (its stored JSON text parsed back).
    const parsed = (text: string | null | undefined) =>
      text && text !== "null" ? (JSON.parse(text) as unknown) : undefined;
    const lines: Array<{ customId: string | null; status: string; result?: unknown; error?: unknown }> = [];
    for await (const c of new BatchChunkStore(pool).resultPages(BATCH, 1024 * 1024)) {
      for (let i = 0; i < c.size; i++) {
        lines.push({
          customId: c.customIds[i] ?? null,
          status: c.statuses[i]!,
          result: parsed(c.results[i]),
          error: parsed(c.errors[i]),
        });
      }
    }
    expect(lines.map((l) => l.customId)).toEqual(Array.from({ length: 600 }, (_, i) => `c${i}`));
    expect(lines.slice(0, 3).map((l) => [l.status, l.result, l.error])).toEqual([
      ["succeeded", { outputs: [] }, undefined],
      ["failed", undefined, { code: "inference_error", message: "bad" }],
      ["queued", undefined, undefined],
    ]);
  });
});
