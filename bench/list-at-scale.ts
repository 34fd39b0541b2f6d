/**
 * GET /v1/jobs at scale: every list filter timed against 10,000,000 finished jobs of one tenant.
 *
 *   node_modules/.bin/tsx bench/list-at-scale.ts
 *   ROWS=1000000 API=0 WALK=0 node_modules/.bin/tsx bench/list-at-scale.ts     # a quicker look
 *
 * On a database of its own (dropped at the end) it
 *   1. times JobStore.insertMany of 20,000-job groups with and without the (tenant, model) index,
 *      alternating, on the table as migrated (logged, every index);
 *   2. fills tenant A with ROWS jobs (a status mix, three models, the newest few queued or
 *      running) and tenant B with one job in 20, interleaved in time, by generate_series;
 *   3. times the list statement as it was (select … where status … order by … limit 51) with the
 *      API's 1.5 s statement timeout, before the model index exists;
 *   4. times every filter through the real JobStore (pool settings as the API's): five pages
 *      following cursors from the top, from the middle and from near the oldest job, twice;
 *   5. fills a 100,000-item batch of A (about 2 KiB of result an item) and times its items'
 *      pages per status, beside what a page without matches read before (every chunk's results);
 *   6. walks `status=running`, alone and with the rarest model, from the top to the last page
 *      (WALK=0 skips it);
 *   7. starts an API in this process (API=0 skips it) and sends 30 list requests of tenant A at
 *      once while tenant B submits 20 jobs (one tenant's lists must not stall another's submits),
 *      after B's 20 alone;
 *      once per MAX_LISTS_PER_TENANT in API_MAX_LISTS (default 2; API_MAX_LISTS=1,2,1000 compares).
 * Prints a table and writes bench/list-at-scale.json.
 *
 * The fill makes `jobs` unlogged (no WAL for gigabytes of rows on a disk other work shares; reads
 * are the same), drops its indexes and builds them afterwards, then vacuums and analyzes, as
 * autovacuum would have by the time a tenant has millions of finished jobs. It writes at
 * fillfactor 50: finished rows then sit about ten to a page, as queued rows inserted at the
 * table's 30 and grown in place by their result (a HOT update) do.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import { Redis } from "ioredis";
import { pino } from "pino";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, JobListQuery, newBatchId } from "@inferline/contracts";
import {
  BatchChunkStore,
  Database,
  encodeCursor,
  JobStore,
  LIST_SCAN_ROWS,
  migrate,
  TenantStore,
  type NewJob,
} from "@inferline/db";
import { loadApiEnv, startApi } from "@inferline/api";

const ROWS = Number(process.env.ROWS ?? 10_000_000);
const INSERT_ROUNDS = Number(process.env.INSERT_ROUNDS ?? 8);
const REPEATS = Number(process.env.REPEATS ?? 2);
const PAGES = 5;
const RUN_API = process.env.API !== "0";
/** MAX_LISTS_PER_TENANT of the API in step 7, one run each (a large value: as good as none). */
const API_MAX_LISTS = (process.env.API_MAX_LISTS ?? "2").split(",").map(Number);
const RUN_WALK = process.env.WALK !== "0";
/** The API's statement timeout (DATABASE_STATEMENT_TIMEOUT_MS' default there). */
const API_STATEMENT_TIMEOUT_MS = 1500;
const STATUSES = ["queued", "running", "succeeded", "failed", "canceled", "expired"] as const;

const base = new URL(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
const dbName = `inferline_bench_list_${crypto.randomBytes(3).toString("hex")}`;
const databaseUrl = Object.assign(new URL(base), { pathname: `/${dbName}` }).toString();
const prefix = `bench-list-${crypto.randomBytes(3).toString("hex")}`;

const log = (line: string) => process.stderr.write(`[list-at-scale] ${line}\n`);
const ms = (since: number) => Math.round((performance.now() - since) * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;

// ---------------------------------------------------------------- 1. insert cost of the index

/** Wall and server CPU time (of the one backend `db` has) of inserting 20,000 jobs as submits do. */
async function timeInsert(db: Database, tenantId: string): Promise<{ wallMs: number; cpuMs: number }> {
  const jobs: NewJob[] = [];
  const at = Date.now();
  let entry = crypto.randomUUID();
  for (let i = 0; i < 20_000; i++) {
    if (i % 256 === 0) entry = crypto.randomUUID(); // a queue entry per 256 jobs, as SubmitWriter plans them
    jobs.push({
      id: crypto.randomUUID(),
      tenantId,
      model: i % 3 ? "iris" : "ocr-text-line",
      version: "1",
      priority: "normal",
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
      requestedOutputs: [],
      metadata: {},
      webhook: null,
      idempotencyKey: null,
      requestHash: null,
      dispatchId: entry,
      queueDeadline: null,
      cancelAt: null,
      createdAt: new Date(at + i),
    });
  }
  const { rows } = await db.pool.query<{ pid: number }>(`select pg_backend_pid() as pid`);
  const cpu = backendCpuMs(rows[0]!.pid);
  const started = performance.now();
  await new JobStore(db.pool, db.prisma).insertMany(jobs);
  return { wallMs: ms(started), cpuMs: backendCpuMs(rows[0]!.pid) - cpu };
}

/** A PostgreSQL backend's user + system CPU time so far, from /proc (same machine). */
function backendCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/**
 * insertMany of 20,000 jobs with and without the (tenant, model) index, alternating; on one
 * connection, so the server CPU each took can be read. The machine is shared: the minimum of each
 * is the steadiest figure.
 */
async function measureInsertCost(tenantId: string) {
  const db = new Database(databaseUrl, { poolSize: 1, statementTimeoutMs: 0 });
  try {
    const definition = await indexDefinition(db, "jobs_tenantId_model_createdAt_id_idx");
    await timeInsert(db, tenantId); // warm-up: plans, caches
    const withIndex: { wallMs: number; cpuMs: number }[] = [];
    const without: { wallMs: number; cpuMs: number }[] = [];
    for (let round = 0; round < INSERT_ROUNDS; round++) {
      withIndex.push(await timeInsert(db, tenantId));
      await db.pool.query(`drop index "jobs_tenantId_model_createdAt_id_idx"`);
      without.push(await timeInsert(db, tenantId));
      await db.pool.query(definition);
    }
    await db.pool.query(`truncate jobs, dispatches, webhook_deliveries`);
    const summary = (xs: { wallMs: number; cpuMs: number }[]) => ({
      wallMs: { min: Math.min(...xs.map((x) => x.wallMs)), median: median(xs.map((x) => x.wallMs)) },
      cpuMs: { min: Math.min(...xs.map((x) => x.cpuMs)), median: median(xs.map((x) => x.cpuMs)) },
    });
    const result = {
      rowsPerInsert: 20_000,
      rounds: INSERT_ROUNDS,
      withIndex: summary(withIndex),
      withoutIndex: summary(without),
      raw: { withIndex, without },
    };
    const ratio = (k: "wallMs" | "cpuMs") =>
      Math.round((result.withIndex[k].min / result.withoutIndex[k].min) * 100) / 100;
    log(
      `insertMany of 20,000 jobs, min of ${INSERT_ROUNDS}: ${result.withIndex.wallMs.min} ms wall / ${result.withIndex.cpuMs.min} ms server CPU with the model index, ` +
        `${result.withoutIndex.wallMs.min} / ${result.withoutIndex.cpuMs.min} without (×${ratio("wallMs")} wall, ×${ratio("cpuMs")} CPU)`,
    );
    return { ...result, minRatio: { wall: ratio("wallMs"), cpu: ratio("cpuMs") } };
  } finally {
    await db.close();
  }
}

async function indexDefinition(db: Database, name: string): Promise<string> {
  const { rows } = await db.pool.query<{ def: string }>(
    `select pg_get_indexdef(indexrelid) as def from pg_index where indexrelid = $1::regclass`,
    [`"${name}"`],
  );
  return rows[0]!.def;
}

// ---------------------------------------------------------------- 2. the fill

const FILL_SQL = `
insert into jobs (id, "tenantId", status, model, version, priority, inputs, result, "errorCode", "errorMessage", attempts,
  metadata, "createdAt", "startedAt", "completedAt", "dispatchId", "leadsFlight")
select gen_random_uuid(), case when g % 20 = 0 then $4::uuid else $3::uuid end, s.status::"JobStatus", m.model, '1', 'normal',
  case when m.model = 'ocr-text-line'
    then '[{"name":"image","shape":[1],"datatype":"BYTES","data":["iVBORw0KGgoAAAANSUhEUgAAAMgAAAAwCAAAAABbzD4nAAAA"]}]'::json
    else '[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]'::json end,
  case when s.status = 'succeeded' then '{"model_name":"iris","model_version":"1","outputs":[{"name":"probabilities",'
    || '"datatype":"FP32","shape":[1,3],"data":[0.9812,0.0171,0.0017]}],"classifications":[{"label":"setosa","score":0.9812}]}' end::json,
  case s.status when 'failed' then 'inference_error' when 'expired' then 'deadline_exceeded' end,
  case when s.status in ('failed', 'expired') then 'the model refused the input' end,
  case when s.status in ('queued', 'expired') then 0 else 1 end, '{}'::jsonb, t.at,
  case when s.status not in ('queued', 'expired') then t.at + interval '3 ms' end,
  case when s.status not in ('queued', 'running') then t.at + interval '5 ms' end,
  case when s.status in ('queued', 'running') then gen_random_uuid() end, false
from generate_series($1::bigint, $2::bigint) g
cross join lateral (select timestamptz '2026-11-01' + g * (30 * 86400000.0 / $5::bigint) * interval '1 ms' as at, random() as r, random() as r2) t
cross join lateral (select case
  when g > $5::bigint - 250 then 'queued' when g > $5::bigint - 300 then 'running'
  when t.r < 0.90 then 'succeeded' when t.r < 0.95 then 'failed' when t.r < 0.98 then 'canceled' else 'expired' end as status) s
cross join lateral (select case when t.r2 < 0.70 then 'iris' when t.r2 < 0.99 then 'ocr-text-line' else 'fraud-score' end as model) m`;

async function fill(
  db: Database,
  a: string,
  b: string,
): Promise<{ total: number; tenantA: number; seconds: number; tableBytes: number; indexSeconds: number }> {
  const total = Math.round((ROWS * 20) / 19);
  const started = performance.now();
  await db.pool.query(`alter table webhook_deliveries drop constraint "webhook_deliveries_jobId_fkey"`);
  await db.pool.query(`alter table jobs set unlogged`);
  await db.pool.query(`alter table jobs set (fillfactor = 50)`);
  const { rows: indexes } = await db.pool.query<{ name: string; def: string }>(
    `select indexrelid::regclass::text as name, pg_get_indexdef(indexrelid) as def from pg_index where indrelid = 'jobs'::regclass`,
  );
  await db.pool.query(`alter table jobs drop constraint jobs_pkey`);
  for (const { name } of indexes) await db.pool.query(`drop index if exists ${name}`);
  // Both cores: two statements over halves of the series.
  const half = Math.floor(total / 2);
  await Promise.all([
    db.pool.query(FILL_SQL, [1, half, a, b, total]),
    db.pool.query(FILL_SQL, [half + 1, total, a, b, total]),
  ]);
  log(`filled ${total.toLocaleString()} rows in ${ms(started) / 1000} s; building indexes`);
  const indexing = performance.now();
  const client = await db.pool.connect();
  try {
    await client.query(`set maintenance_work_mem = '512MB'`); // index builds sort in memory
    await client.query(`alter table jobs set (fillfactor = 30)`);
    await client.query(`alter table jobs add constraint jobs_pkey primary key (id)`);
    for (const { name, def } of indexes)
      if (name !== "jobs_pkey" && !name.includes("jobs_tenantId_model_")) await client.query(def);
    await client.query(`vacuum (analyze) jobs`);
  } finally {
    client.release();
  }
  const indexSeconds = ms(indexing) / 1000;
  const { rows } = await db.pool.query<{ a: string; bytes: string }>(
    `select (select count(*) from jobs where "tenantId" = $1) as a, pg_table_size('jobs') as bytes`,
    [a],
  );
  log(`indexes and vacuum in ${indexSeconds} s; tenant A has ${Number(rows[0]!.a).toLocaleString()} jobs`);
  return {
    total,
    tenantA: Number(rows[0]!.a),
    seconds: ms(started) / 1000,
    tableBytes: Number(rows[0]!.bytes),
    indexSeconds,
  };
}

async function buildModelIndex(db: Database, definition: string): Promise<number> {
  const started = performance.now();
  const client = await db.pool.connect();
  try {
    await client.query(`set maintenance_work_mem = '512MB'`);
    await client.query(definition);
    await client.query(`analyze jobs`);
  } finally {
    client.release();
  }
  return ms(started) / 1000;
}

// ---------------------------------------------------------------- 3. the statement as it was

interface Filter {
  name: string;
  query: { status?: (typeof STATUSES)[number]; model?: string };
}

const FILTERS: Filter[] = [
  { name: "(none)", query: {} },
  { name: "model=iris", query: { model: "iris" } },
  { name: "model=fraud-score", query: { model: "fraud-score" } },
  ...STATUSES.map((status) => ({ name: `status=${status}`, query: { status } })),
  { name: "status=failed&model=iris", query: { status: "failed", model: "iris" } },
  { name: "status=failed&model=fraud-score", query: { status: "failed", model: "fraud-score" } },
  { name: "status=running&model=fraud-score", query: { status: "running", model: "fraud-score" } },
];

/** The first page as the Prisma findMany of before asked for it; its time, or "timeout". */
async function timeBefore(db: Database, tenantId: string, filter: Filter): Promise<number | "timeout"> {
  const values: unknown[] = [tenantId];
  const where = [`"tenantId" = $1`];
  if (filter.query.status) where.push(`status = $${values.push(filter.query.status)}::"JobStatus"`);
  if (filter.query.model) where.push(`model = $${values.push(filter.query.model)}`);
  const started = performance.now();
  try {
    await db.pool.query(
      `select * from jobs where ${where.join(" and ")} order by "createdAt" desc, id desc limit 51`,
      values,
    );
    return ms(started);
  } catch (err) {
    if ((err as { code?: string }).code === "57014") return "timeout";
    throw err;
  }
}

// ---------------------------------------------------------------- 4. every filter through JobStore

interface PageTiming {
  ms: number;
  jobs: number;
  more: boolean;
}

async function pages(
  store: JobStore,
  tenantId: string,
  filter: Filter,
  cursor: string | undefined,
  count: number,
): Promise<PageTiming[]> {
  const out: PageTiming[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const page = await store.list(tenantId, JobListQuery.parse({ ...filter.query, limit: 50, cursor }));
    out.push({ ms: ms(started), jobs: page.jobs.length, more: page.nextCursor !== null });
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return out;
}

/** Cursors at the top (none), the middle and near the oldest of the tenant's jobs. */
async function positions(
  db: Database,
  tenantId: string,
  count: number,
): Promise<{ name: string; cursor: string | undefined }[]> {
  const at = async (offset: number) => {
    const { rows } = await db.pool.query<{ createdAt: Date; id: string }>(
      `select "createdAt", id from jobs where "tenantId" = $1 order by "createdAt" desc, id desc offset $2 limit 1`,
      [tenantId, offset],
    );
    return encodeCursor(rows[0]!);
  };
  return [
    { name: "top", cursor: undefined },
    { name: "middle", cursor: await at(Math.floor(count / 2)) },
    { name: "oldest 1k", cursor: await at(count - 1000) },
  ];
}

// ---------------------------------------------------------------- 5. a batch's items

const BATCH_ITEMS = 100_000;

/**
 * A finished 100,000-item batch of tenant A: every 1,000th item failed, the rest with a result of
 * about 2 KiB; results and errors in the layout the workers write (one element a line).
 */
async function fillBatch(
  db: Database,
  tenantId: string,
): Promise<{ batchId: string; seconds: number; storedMiB: number }> {
  const started = performance.now();
  const batchId = newBatchId();
  await db.pool.query(
    `insert into batches (id, "tenantId", model, version, total, priority, remaining, "createdAt", "completedAt") values ($1, $2, 'iris', '1', $3, 'low', 0, now(), now())`,
    [batchId, tenantId, BATCH_ITEMS],
  );
  await db.pool.query(
    `insert into batch_chunks (id, "batchId", "firstIndex", size, inputs, "customIds", statuses, results, errors, succeeded, failed, attempts, "startedAt", "completedAt")
     select gen_random_uuid(), $1, c.first, c.size, '[]'::json, array_fill(null::text, array[c.size]),
       (select array_agg(case when (c.first + i) % 1000 = 999 then 'failed' else 'succeeded' end order by i) from generate_series(0, c.size - 1) i),
       (select ('[' || E'\n' || string_agg(case when (c.first + i) % 1000 = 999 then 'null'
          else json_build_object('model_name', 'iris', 'model_version', '1', 'outputs', json_build_array(json_build_object(
            'name', 'text', 'datatype', 'BYTES', 'shape', json_build_array(1), 'data', json_build_array(repeat(md5(random()::text), 64)))))::text end,
          E',\n' order by i) || E'\n' || ']')::json
        from generate_series(0, c.size - 1) i),
       (select ('[' || E'\n' || string_agg(case when (c.first + i) % 1000 = 999 then '{"code":"inference_error","message":"no"}' else 'null' end,
          E',\n' order by i) || E'\n' || ']')::json
        from generate_series(0, c.size - 1) i),
       c.size - c.failed, c.failed, 1, now(), now()
     from (select k * 512 as first, least(512, $2 - k * 512) as size, 0 as failed from generate_series(0, ($2 - 1) / 512) k) c`,
    [batchId, BATCH_ITEMS],
  );
  const { rows } = await db.pool.query<{ bytes: string }>(
    `select sum(pg_column_size(results) + pg_column_size(errors)) as bytes from batch_chunks where "batchId" = $1`,
    [batchId],
  );
  return { batchId, seconds: ms(started) / 1000, storedMiB: Math.round(Number(rows[0]!.bytes) / 2 ** 20) };
}

/** Pages of the batch's items per filter, and what a page without matches read before: every chunk's results. */
async function timeBatchItems(db: Database, tenantId: string, batchId: string) {
  const items = new BatchChunkStore(db.pool);
  // Before: one statement per chunk, newest first, each chunk's results and errors read whole.
  const started = performance.now();
  let [below, bytes] = [BATCH_ITEMS, 0];
  for (;;) {
    const { rows } = await db.pool.query<{ firstIndex: number; results: string; errors: string | null }>(
      `select "firstIndex", results::text as results, errors::text as errors from batch_chunks where "batchId" = $1 and "firstIndex" < $2 order by "firstIndex" desc limit 1`,
      [batchId, below],
    );
    if (!rows[0]) break;
    bytes += rows[0].results.length + (rows[0].errors?.length ?? 0);
    below = rows[0].firstIndex;
  }
  const before = { readMs: ms(started), readMiB: Math.round(bytes / 2 ** 20) };
  const out: Record<string, unknown>[] = [];
  for (const status of [undefined, "succeeded", "failed", "queued"] as const) {
    const times: number[] = [];
    const jobs: number[] = [];
    let beforeIndex: number | null = BATCH_ITEMS;
    for (let p = 0; p < PAGES && beforeIndex !== null; p++) {
      const at = performance.now();
      const page = await items.listItems(tenantId, batchId, { beforeIndex, limit: 50, status });
      times.push(ms(at));
      jobs.push(page.jobs.length);
      beforeIndex = page.nextBefore;
    }
    out.push({
      filter: status ? `batchId&status=${status}` : "batchId",
      jobsPerPage: jobs.join(" "),
      firstMs: times[0],
      medianMs: median(times),
      maxMs: Math.max(...times),
    });
  }
  return { before, pages: out };
}

// ---------------------------------------------------------------- 7. through an API

async function apiScenario(keyA: string, keyB: string, maxLists: number) {
  const logger = pino({ level: "silent" });
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
  };
  const api = await startApi(
    loadApiEnv({ ...env, RATE_LIMIT_PER_SECOND: "0", MAX_LISTS_PER_TENANT: String(maxLists) }),
    logger,
  );
  try {
    const paths = [
      "/v1/jobs?status=failed&limit=50",
      "/v1/jobs?status=queued&limit=50",
      "/v1/jobs?model=ocr-text-line&limit=50",
      "/v1/jobs?status=running&limit=50",
    ];
    const get = async (path: string) => {
      const started = performance.now();
      const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${keyA}` } });
      const body = (await res.json()) as { nextCursor?: string | null };
      return { status: res.status, ms: ms(started), nextCursor: body.nextCursor ?? null };
    };
    const submit = async () => {
      const started = performance.now();
      const res = await fetch(`${api.url}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${keyB}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "iris",
          cache: "bypass",
          inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
        }),
      });
      await res.arrayBuffer();
      return { status: res.status, ms: ms(started) };
    };
    const submitEvery50ms = async () => {
      const submits: Promise<{ status: number; ms: number }>[] = [];
      for (let i = 0; i < 20; i++) {
        submits.push(submit());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return Promise.all(submits);
    };
    await get(paths[0]!); // connections, plans
    await submit();
    const alone = await submitEvery50ms();
    // 30 walkers, three pages each, while B submits one job every 50 ms.
    const lists = Array.from({ length: 30 }, async (_, i) => {
      const answers = [];
      let path: string | undefined = paths[i % paths.length];
      for (let p = 0; p < 3 && path; p++) {
        const answer = await get(path);
        answers.push(answer);
        path = answer.nextCursor ? `${paths[i % paths.length]}&cursor=${answer.nextCursor}` : undefined;
      }
      return answers;
    });
    const submitAnswers = await submitEvery50ms();
    const listAnswers = (await Promise.all(lists)).flat();
    const summary = (answers: { status: number; ms: number }[]) => ({
      count: answers.length,
      statuses: countBy(answers.map((a) => a.status)),
      medianMs: median(answers.map((a) => a.ms)),
      maxMs: Math.max(...answers.map((a) => a.ms)),
    });
    return {
      maxListsPerTenant: maxLists,
      tenantBSubmitsAlone: summary(alone),
      tenantALists: summary(listAnswers),
      tenantBSubmits: summary(submitAnswers),
    };
  } finally {
    await api.close();
  }
}

function countBy(values: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

async function deleteRedisKeys(): Promise<void> {
  const redis = new Redis(redisUrl);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const loadAtStart = Number(os.loadavg()[0]!.toFixed(2));
  await migrate(databaseUrl);
  const admin = new Database(databaseUrl, { poolSize: 2, statementTimeoutMs: 0 });
  // The API's pool settings: its statement timeout, so a page over it fails here as it would there.
  const apiLike = new Database(databaseUrl, { poolSize: 16, statementTimeoutMs: API_STATEMENT_TIMEOUT_MS });
  try {
    const tenants = new TenantStore(admin.pool, admin.prisma);
    const [keyA, keyB] = [await tenants.createKey("tenant-a"), await tenants.createKey("tenant-b")];
    const [a, b] = [keyA.tenant.id, keyB.tenant.id];
    const insertCost = await measureInsertCost(a);
    const modelIndex = await indexDefinition(admin, "jobs_tenantId_model_createdAt_id_idx");
    const filled = await fill(admin, a, b);

    log("the statement as it was (no model index yet)");
    const before: Record<string, number | "timeout"> = {};
    for (const filter of FILTERS) before[filter.name] = await timeBefore(apiLike, a, filter);
    const modelIndexSeconds = await buildModelIndex(admin, modelIndex);

    log(`every filter through JobStore (LIST_SCAN_ROWS ${LIST_SCAN_ROWS})`);
    const store = new JobStore(apiLike.pool, apiLike.prisma);
    const rows: Record<string, unknown>[] = [];
    const where = await positions(admin, a, filled.tenantA);
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const filter of FILTERS) {
        for (const position of where) {
          const timings = await pages(store, a, filter, position.cursor, PAGES);
          const times = timings.map((t) => t.ms);
          rows.push({
            repeat,
            filter: filter.name,
            from: position.name,
            jobsPerPage: timings.map((t) => t.jobs).join(" "),
            firstMs: times[0],
            medianMs: median(times),
            maxMs: Math.max(...times),
            beforeMs: position.name === "top" ? before[filter.name] : "",
          });
        }
      }
    }
    const last = rows.filter((r) => r.repeat === REPEATS - 1);
    console.table(last.map(({ repeat: _, ...r }) => r));

    log(`a batch of ${BATCH_ITEMS.toLocaleString()} items`);
    const batch = await fillBatch(admin, a);
    const batchItems = { ...batch, ...(await timeBatchItems(apiLike, a, batch.batchId)) };
    console.table(batchItems.pages);
    log(`a page without matches used to read every chunk's results: ${JSON.stringify(batchItems.before)}`);

    const walks: Record<string, unknown>[] = [];
    const walked: Filter[] = [
      { name: "status=running", query: { status: "running" } },
      { name: "status=running&model=fraud-score", query: { status: "running", model: "fraud-score" } },
    ];
    for (const filter of RUN_WALK ? walked : []) {
      log(`walking ${filter.name} to its last page`);
      const started = performance.now();
      const timings = await pages(store, a, filter, undefined, Number.MAX_SAFE_INTEGER);
      const times = timings.map((t) => t.ms);
      walks.push({
        filter: filter.name,
        pages: timings.length,
        jobs: timings.reduce((n, t) => n + t.jobs, 0),
        seconds: ms(started) / 1000,
        medianPageMs: median(times),
        maxPageMs: Math.max(...times),
      });
      log(`walk: ${JSON.stringify(walks[walks.length - 1])}`);
    }
    const api = [];
    for (const maxLists of RUN_API ? API_MAX_LISTS : []) {
      api.push(await apiScenario(keyA.key, keyB.key, maxLists));
      log(`API, 30 lists of A with 20 submits of B meanwhile: ${JSON.stringify(api[api.length - 1])}`);
    }

    const result = {
      at: new Date().toISOString(),
      command: "node_modules/.bin/tsx bench/list-at-scale.ts",
      listScanRows: LIST_SCAN_ROWS,
      statementTimeoutMs: API_STATEMENT_TIMEOUT_MS,
      fill: { ...filled, tableGiB: Math.round((filled.tableBytes / 2 ** 30) * 100) / 100, modelIndexSeconds },
      insertCost,
      pages: rows,
      batchItems,
      walks,
      api,
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model,
        node: process.version,
        memGiB: Math.round(os.totalmem() / 2 ** 30),
        loadAverage1mAtStart: loadAtStart,
      },
    };
    fs.writeFileSync(new URL("./list-at-scale.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await apiLike.close();
    await admin.close();
    await dropDatabase();
    await deleteRedisKeys().catch((err: Error) => log(`could not delete Redis keys under ${prefix}: ${err.message}`));
  }
}

async function dropDatabase(): Promise<void> {
  const admin = new Database(Object.assign(new URL(base), { pathname: "/postgres" }).toString(), {
    poolSize: 1,
    statementTimeoutMs: 0,
  });
  await admin.pool
    .query(`drop database if exists ${dbName} with (force)`)
    .catch((err: Error) => log(`could not drop ${dbName}: ${err.message}`));
  await admin.close();
  log(`dropped ${dbName}`);
}

await main();
process.exit(0);
