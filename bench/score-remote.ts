/**
 * `inferline score --remote` end to end: a generated iris CSV scored through the real API, Redis,
 * two worker processes and PostgreSQL, all on this machine, the CLI run as a user runs it.
 *
 *   node_modules/.bin/tsx bench/score-remote.ts            # 200,000 rows, 2 workers
 *   ROWS=100000 WORKERS=1 CONCURRENCY=8 CHUNK=524288 node_modules/.bin/tsx bench/score-remote.ts
 *   CACHE=bypass node_modules/.bin/tsx bench/score-remote.ts   # the CLI's --cache mode (default off)
 *   ROWS_PER_ITEM=1 node_modules/.bin/tsx bench/score-remote.ts # the CLI's --rows-per-item (default: the CLI's, 32)
 *
 * Uses its own database (inferline_bench_remote, dropped at the end) and queue prefix; prints rows/s and
 * the CPU seconds each part used (API, workers, CLI, PostgreSQL), and writes bench/score-remote.json.
 *
 * Then the same file is scored in local mode (`inferline score` without --remote, the same CLI
 * process measure: spawn to exit), so that `remoteOverLocal` (remote rows/s over local rows/s) and
 * `cpuUsPerRow` (API + workers + CLI + PostgreSQL, µs of CPU per row; Redis's shown apart, as
 * `redisUsPerRow`, since the machine's one redis-server also serves whoever else runs) come from
 * one run of this script; `pnpm bench`'s targets table reads them from bench/score-remote.json.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Redis } from "ioredis";
import { Database, migrate, TenantStore } from "@inferline/db";

const ROWS = Number(process.env.ROWS ?? 200_000);
const WORKERS = Number(process.env.WORKERS ?? 2);
const CONCURRENCY = process.env.CONCURRENCY ?? "4";
const CHUNK = process.env.CHUNK ?? String(256 * 1024); // the CLI's default --chunk-size
// Every row runs in either mode (the generated rows repeat, and a re-run would be all hits), so the
// figures stay comparable with runs before the result cache. `off` (a bulk scoring run that leaves the
// cache alone) is the default; `bypass` also digests every row and stores every result in Redis.
const CACHE = process.env.CACHE ?? "off";
/** The CLI's --rows-per-item; unset, the CLI's default. */
const ROWS_PER_ITEM = process.env.ROWS_PER_ITEM;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DB = "inferline_bench_remote";
const DATABASE_URL = `postgresql://postgres@127.0.0.1:5432/${DB}`;
const PREFIX = `bench-remote-${process.pid}`;
const PORT = 3900 + (process.pid % 100);

function generate(file: string): void {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  let s = "id,sepal_length,sepal_width,petal_length,petal_width\n";
  for (let i = 0; i < ROWS; i++)
    s += `r${i},${(4 + rand() * 4).toFixed(1)},${(2 + rand() * 2.5).toFixed(1)},${(1 + rand() * 6).toFixed(1)},${(0.1 + rand() * 2.4).toFixed(1)}\n`;
  fs.writeFileSync(file, s);
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** PostgreSQL's processes (backends and background workers). */
function postgresPids(): number[] {
  return pidsNamed("postgres");
}

/** redis-server's process(es). */
function redisPids(): number[] {
  return pidsNamed("redis-server");
}

function pidsNamed(comm: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === comm;
      } catch {
        return false;
      }
    });
}

function launch(file: string, env: Record<string, string>): ChildProcess {
  const prof = process.env.PROFILE
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROFILE}/${path.basename(path.dirname(path.dirname(file)))}`]
    : [];
  const child = spawn(process.execPath, [...prof, "--import", "tsx", file], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL, QUEUE_PREFIX: PREFIX, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return child;
}

async function waitFor(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never became ready`);
}

/** `inferline score` of the same file in local mode (in-process onnxruntime), timed as the remote run is: CLI spawn to exit. */
function scoreLocally(
  file: string,
  out: string,
): { rowsPerSecond: number; pipelineRowsPerSecond: number; seconds: number } {
  const t = performance.now();
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "apps/cli/src/main.ts", "score", file, "--model", "iris", "--out", out, "--progress", "off"],
    { cwd: ROOT, encoding: "utf8" },
  );
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`local scoring exited ${r.status}: ${r.stderr}`);
  const summary = /([\d,]+) rows scored.*?, ([\d,]+) rows\/s/.exec(r.stderr);
  const rows = Number(summary?.[1]?.replaceAll(",", "") ?? Number.NaN);
  return {
    rowsPerSecond: Math.round(rows / seconds),
    pipelineRowsPerSecond: Number(summary?.[2]?.replaceAll(",", "") ?? Number.NaN),
    seconds: Number(seconds.toFixed(2)),
  };
}

const admin = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
await admin.connect();
await admin.query(`drop database if exists ${DB} with (force)`);
await admin.end();
await migrate(DATABASE_URL);
const db = new Database(DATABASE_URL, { poolSize: 1 });
const key = (await new TenantStore(db.pool, db.prisma).createKey("bench")).key;
await db.close();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-bench-remote-"));
const input = path.join(dir, "in.csv");
generate(input);
const procs = [launch("apps/api/src/main.ts", { PORT: String(PORT), HOST: "127.0.0.1", RATE_LIMIT_PER_SECOND: "0" })];
for (let i = 0; i < WORKERS; i++)
  procs.push(launch("apps/worker/src/main.ts", { WORKER_MODELS: "iris", METRICS_PORT: "0", WORKER_CONCURRENCY: "4" }));
try {
  await waitFor(`http://127.0.0.1:${PORT}/readyz`);
  await new Promise((r) => setTimeout(r, 2000)); // let the workers load their models
  const started = performance.now();
  const pg0 = postgresPids().map((pid) => [pid, cpuSeconds(pid)] as const);
  const redis0 = redisPids().map((pid) => [pid, cpuSeconds(pid)] as const);
  const procs0 = procs.map((p) => cpuSeconds(p.pid));
  // /usr/bin/time reports the CLI's own CPU time when it exits (its /proc entry is gone by then).
  const cli = spawn(
    "/usr/bin/time",
    [
      "-f",
      "cli-cpu %U %S",
      process.execPath,
      ...(process.env.PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROFILE}/cli`] : []),
      "--import",
      "tsx",
      "apps/cli/src/main.ts",
      "score",
      input,
      "--model",
      "iris",
      "--out",
      path.join(dir, "out.jsonl"),
      "--progress",
      "off",
      "--remote",
      `http://127.0.0.1:${PORT}`,
      "--api-key",
      key,
      "--concurrency",
      CONCURRENCY,
      "--chunk-size",
      CHUNK,
      "--cache",
      CACHE,
      ...(ROWS_PER_ITEM ? ["--rows-per-item", ROWS_PER_ITEM] : []),
    ],
    { cwd: ROOT, stdio: ["ignore", "inherit", "pipe"] },
  );
  let stderr = "";
  cli.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const code = await new Promise<number | null>((resolve) => cli.on("close", resolve));
  const m = /cli-cpu ([\d.]+) ([\d.]+)/.exec(stderr);
  const cliCpu = m ? Number(m[1]) + Number(m[2]) : Number.NaN;
  process.stderr.write(stderr.replace(/cli-cpu .*\n?/, ""));
  const seconds = (performance.now() - started) / 1000;
  const redisCpu = redisPids().reduce(
    (sum, pid) => sum + Math.max(0, cpuSeconds(pid) - (redis0.find(([p]) => p === pid)?.[1] ?? 0)),
    0,
  );
  const cpu = {
    api: cpuSeconds(procs[0]!.pid) - procs0[0]!,
    workers: procs.slice(1).reduce((sum, p, i) => sum + cpuSeconds(p.pid) - procs0[i + 1]!, 0),
    cli: cliCpu,
    // Backends that started during the run count whole; ones that ended during it are missed.
    postgres: postgresPids().reduce(
      (sum, pid) => sum + Math.max(0, cpuSeconds(pid) - (pg0.find(([p]) => p === pid)?.[1] ?? 0)),
      0,
    ),
  };
  const rows = fs.readFileSync(path.join(dir, "out.jsonl"), "utf8").split("\n").filter(Boolean).length;
  const local = scoreLocally(input, path.join(dir, "out-local.jsonl"));
  const cpuUsPerRow = Math.round(((cpu.api + cpu.workers + cpu.cli + cpu.postgres) / rows) * 1e7) / 10;
  const result = {
    rows,
    seconds: Number(seconds.toFixed(2)),
    rowsPerSecond: Math.round(rows / seconds),
    workers: WORKERS,
    concurrency: Number(CONCURRENCY),
    chunkBytes: Number(CHUNK),
    cache: CACHE,
    rowsPerItem: ROWS_PER_ITEM ? Number(ROWS_PER_ITEM) : "CLI default",
    exitCode: code,
    cpuSeconds: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number(v.toFixed(2))])),
    cpuUsPerRow,
    redisUsPerRow: Math.round((redisCpu / rows) * 1e7) / 10,
    local,
    remoteOverLocal: Math.round((rows / seconds / local.rowsPerSecond) * 1000) / 1000,
    // Against local mode's own pipeline figure (model loaded to output fsynced: no process start-up), for the record.
    remoteOverLocalPipeline: Math.round((rows / seconds / local.pipelineRowsPerSecond) * 1000) / 1000,
    cpus: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
  };
  console.log(
    `\nscore --remote: ${rows} rows in ${result.seconds} s = ${result.rowsPerSecond} rows/s (workers ${WORKERS}, concurrency ${CONCURRENCY}, chunk ${CHUNK} B, --cache ${CACHE}, --rows-per-item ${ROWS_PER_ITEM ?? "default"}, exit ${code})`,
  );
  console.log(`CPU seconds during the run (${seconds.toFixed(1)} s wall, ${os.cpus().length} cores):`);
  console.table(
    Object.fromEntries(
      Object.entries(cpu).map(([k, v]) => [
        k,
        { seconds: Number(v.toFixed(2)), "µs per row": Math.round((v / rows) * 1e6) },
      ]),
    ),
  );
  console.log(
    `all four: ${cpuUsPerRow} µs of CPU per row (goal ≤ 55); redis-server beside them ${result.redisUsPerRow} µs per row`,
  );
  console.log(
    `local mode, same file, same measure (CLI spawn to exit): ${local.rowsPerSecond} rows/s (its own pipeline figure ${local.pipelineRowsPerSecond} rows/s); remote/local ${result.remoteOverLocal} (goal ≥ 0.12; against the pipeline figure ${result.remoteOverLocalPipeline})`,
  );
  fs.writeFileSync(path.join(ROOT, "bench/score-remote.json"), JSON.stringify(result, null, 2) + "\n");
} finally {
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  const redis = new Redis("redis://127.0.0.1:6379");
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  fs.rmSync(dir, { recursive: true, force: true });
  const cleanup = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
  await cleanup.connect();
  await cleanup.query(`drop database if exists ${DB} with (force)`);
  await cleanup.end();
}
