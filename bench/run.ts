/**
 * `pnpm bench` — Inferline against the limits of this machine.
 *
 *   npx pnpm@10 bench                                  # everything, both models (~3 min)
 *   npx pnpm@10 bench --models iris --scenarios drain,queue-ceiling
 *   npx pnpm@10 bench --scale 0.5                      # half the jobs everywhere
 *   npx pnpm@10 bench --profile                        # node --cpu-prof for every process → bench/profiles/
 *   npx pnpm@10 bench --models iris --scenarios submit --otel   # OpenTelemetry on: spans exported to a local OTLP sink
 *   npx pnpm@10 bench --models iris --scenarios fairness   # a light tenant's latency behind a heavy tenant's backlog
 *   npx pnpm@10 bench --models iris --scenarios cache      # result-cache hits beside misses (jobs, and a batch)
 *   npx pnpm@10 bench --models iris --scenarios latency-sweep   # latency and queue-latency at 50 … 1,600 jobs/s → bench/latency-chart.svg
 *
 * Job counts per scenario: BENCH_<MODEL>_<SCENARIO>_N (e.g. BENCH_IRIS_DRAIN_N=50000,
 * BENCH_OCR_DRAIN_N=600); other knobs are read by the scenario files (BENCH_SUBMIT_MODE,
 * BENCH_SUBMIT_CONCURRENCY, BENCH_LATENCY_RATE, BENCH_WORKER_THREADS, ...).
 *
 * Needs PostgreSQL and Redis on their default local ports (BENCH_DATABASE_URL's server,
 * BENCH_REDIS_URL). Uses a database of its own run, `inferline_bench_<hex>` (created at the start,
 * dropped at the end; BENCH_DATABASE_URL names another) and BullMQ prefixes `bench-<run id>:...` (deleted at the end). Each scenario
 * runs in a fresh process (bench/scenarios/<name>.ts), one after the other, so that the ratios
 * come from one run on the same machine state. Progress goes to stderr; the table to stdout; all
 * figures to bench/results.json.
 */
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { Database, migrate, TenantStore } from "@inferline/db";
import { breakdownTable, type Breakdown } from "./support/hop-breakdown.ts";
import { latencyChartSvg, type SweepPoint } from "./support/latency-chart.ts";
import { OtlpSink } from "./support/otlp-sink.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");

// ------------------------------------------------------------------ options

const args = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i === -1) return undefined;
  const v = args[i + 1];
  return v === undefined || v.startsWith("--") ? "true" : v;
}
if (flag("help")) {
  process.stdout.write(
    fs
      .readFileSync(fileURLToPath(import.meta.url), "utf8")
      .split("*/")[0]!
      .replace(/^\/\*\*|^ \* ?/gm, ""),
  );
  process.exit(0);
}
const MODELS = (flag("models") ?? "iris,ocr-text-line").split(",");
const SCENARIOS = (
  flag("scenarios") ?? "raw,queue-ceiling,naive,drain,submit,express-ceiling,latency,queue-latency,fairness,cache"
).split(",");
const SCALE = Number(flag("scale") ?? 1);
const PROFILE = flag("profile") !== undefined;
/** Tracing on in every scenario process (OTEL_EXPORTER_OTLP_ENDPOINT pointed at a local sink that only counts). */
const OTEL = flag("otel") !== undefined;
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 30);

const runSuffix = crypto.randomBytes(2).toString("hex");
// A database of this run's own: two bench runs on one machine (helpers, CI) must not drop each other's.
const adminUrl = process.env.BENCH_DATABASE_URL ?? `postgresql://postgres@127.0.0.1:5432/inferline_bench_${runSuffix}`;
const databaseUrl = adminUrl;
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const runId = `bench-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}-${runSuffix}`;
const dbName = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));

/** Which scenarios run for which model, and with how many jobs by default (sized for ~3 min in all). */
const PLAN: Record<string, Partial<Record<string, number>>> = {
  // fairness: the heavy tenant's backlog of jobs (plus a batch of BENCH_FAIRNESS_BATCH items).
  // express-ceiling: requests (as submit); queue-latency: paced at the latency scenario's rate.
  iris: {
    raw: 0,
    "queue-ceiling": 40_000,
    naive: 15_000,
    drain: 40_000,
    submit: 20_000,
    "express-ceiling": 20_000,
    latency: 0,
    "queue-latency": 0,
    "latency-sweep": 0,
    fairness: 100_000,
    cache: 5_000,
  },
  // ocr drain: 600 lines (about 10 s); a few seconds of draining are too short for drainOverRaw to settle.
  // ocr fairness: the heavy tenant's 2,000 jobs (plus a 2,000-item batch), against 2 light jobs/s.
  "ocr-text-line": { raw: 0, naive: 120, drain: 600, latency: 0, fairness: 2_000 },
};
const SHORT: Record<string, string> = { iris: "IRIS", "ocr-text-line": "OCR" };

function jobsFor(model: string, scenario: string): number {
  const name = `BENCH_${SHORT[model]}_${scenario.replace("-", "_").toUpperCase()}_N`;
  return Number(process.env[name] ?? Math.max(1, Math.round((PLAN[model]![scenario] ?? 0) * SCALE)));
}

const log = (line: string) => process.stderr.write(`${line}\n`);

// ------------------------------------------------------------------ setup and cleanup

async function recreateDatabase(): Promise<void> {
  const admin = new pg.Client({
    connectionString: Object.assign(new URL(databaseUrl), { pathname: "/postgres" }).toString(),
  });
  await admin.connect();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
  await migrate(databaseUrl);
}

async function dropDatabase(): Promise<void> {
  const admin = new pg.Client({
    connectionString: Object.assign(new URL(databaseUrl), { pathname: "/postgres" }).toString(),
  });
  await admin.connect();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}

async function deleteKeys(): Promise<number> {
  const redis = new Redis(redisUrl);
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${runId}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  return deleted;
}

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  const keys = await deleteKeys().catch((err: Error) => (log(`could not delete Redis keys: ${err.message}`), 0));
  await dropDatabase().catch((err: Error) => log(`could not drop ${dbName}: ${err.message}`));
  log(`cleaned up: ${keys} Redis keys under ${runId}:*, database ${dbName} dropped`);
}

// ------------------------------------------------------------------ machine load

function cpuOfOthers(): { others: number; total: number } {
  // Busy CPU seconds of the whole machine, from /proc/stat.
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { others: (total - idle) / 100, total: total / 100 };
}

/** Cores busy on this machine over `ms` (nothing of ours runs between scenarios). */
async function busyCores(ms = 1000): Promise<number> {
  const a = cpuOfOthers();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuOfOthers();
  return (b.others - a.others) / ((performance.now() - t) / 1000);
}

/** Waits (up to BENCH_QUIET_WAIT_S) for other work on the machine to settle below half a core. */
async function waitQuiet(): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let busy = await busyCores();
  if (busy > 0.5)
    log(`  machine busy with other work (${busy.toFixed(2)} cores); waiting up to ${QUIET_WAIT_S} s for it to settle`);
  while (busy > 0.5 && Date.now() < deadline) busy = await busyCores();
  if (busy > 0.5) log(`  still ${busy.toFixed(2)} cores busy: measuring anyway (noted in results.json)`);
  return Math.round(busy * 100) / 100;
}

// ------------------------------------------------------------------ scenarios

type Result = Record<string, unknown> & {
  jobsPerSecond?: number;
  usage?: { cores?: Record<string, number>; perJob?: Record<string, number | string> };
};

async function runScenario(model: string, scenario: string, env: Record<string, string>): Promise<Result> {
  const n = jobsFor(model, scenario);
  const out = path.join(os.tmpdir(), `${runId}-${scenario}-${model}.json`);
  const busyBefore = await waitQuiet();
  const nodeFlags = PROFILE
    ? [
        `--cpu-prof`,
        `--cpu-prof-dir=${path.join(HERE, "profiles")}`,
        `--cpu-prof-name=${scenario}-${model}-${Date.now()}.cpuprofile`,
      ]
    : [];
  log(`▶ ${scenario} · ${model}${PLAN[model]![scenario] ? ` · ${n} jobs` : ""}`);
  const t = performance.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [...nodeFlags, "--import", "tsx", path.join(HERE, "scenarios", `${scenario}.ts`)],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          ...env,
          BENCH_MODEL: model,
          BENCH_N: String(n),
          BENCH_OUT: out,
          ...(PROFILE ? { BENCH_CHILD_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${path.join(HERE, "profiles")}` } : {}),
        },
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    const limit = Number(process.env.BENCH_SCENARIO_TIMEOUT_S ?? 300);
    const timer = setTimeout(() => {
      log(`  ${scenario} · ${model} still running after ${limit} s: stopping it`);
      child.kill("SIGKILL");
    }, limit * 1000);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c ?? 1);
    });
  });
  const took = Math.round(performance.now() - t) / 1000;
  if (code !== 0 || !fs.existsSync(out)) {
    log(`  ✗ ${scenario} · ${model} failed (exit ${code})`);
    return { scenario, model, error: `exit ${code}`, busyBefore, took };
  }
  const result = JSON.parse(fs.readFileSync(out, "utf8")) as Result;
  fs.rmSync(out);
  return { ...result, busyBefore, took };
}

// ------------------------------------------------------------------ latency sweep

const SWEEP_RATES = (process.env.BENCH_SWEEP_RATES ?? "50,100,200,400,800,1600").split(",").map(Number);
const SWEEP_SECONDS = process.env.BENCH_SWEEP_SECONDS ?? "5";

interface SweepStep extends SweepPoint {
  p90: number;
  /** Share of the jobs that finished within the long-poll's 10 s. */
  finished: number;
  /** Why the sweep stopped here for this system (it is then the last step). */
  saturated?: string;
  busyBefore?: number;
  /** Cores the rest of the machine (not this step's processes, PostgreSQL or Redis) kept busy during the step. */
  otherCores?: number;
}
interface Sweep {
  model: string;
  secondsPerStep: number;
  rates: number[];
  inferline: SweepStep[];
  queue: SweepStep[];
}

/**
 * The latency scenario (traces off) and queue-latency at each of BENCH_SWEEP_RATES, one beside the
 * other at each rate (so both see the same machine), BENCH_SWEEP_SECONDS each after a 1 s warm-up.
 * A system stops at saturation: it achieved under 0.8 of the offered rate, more than 1% of its jobs
 * did not finish within 10 s, or its p99 passed 10 × its p99 at the lowest rate (and 100 ms).
 */
async function runSweep(model: string, env: Record<string, string>): Promise<Sweep> {
  const sweep: Sweep = { model, secondsPerStep: Number(SWEEP_SECONDS), rates: SWEEP_RATES, inferline: [], queue: [] };
  const systems = [
    ["inferline", "latency"],
    ["queue", "queue-latency"],
  ] as const;
  const live = new Set<string>(systems.map(([s]) => s));
  for (const rate of SWEEP_RATES) {
    for (const [system, scenario] of systems) {
      if (!live.has(system)) continue;
      log(`  sweep: ${scenario} at ${rate}/s`);
      const r = await runScenario(model, scenario, {
        ...env,
        BENCH_LATENCY_RATE: String(rate),
        BENCH_LATENCY_SECONDS: SWEEP_SECONDS,
        BENCH_LATENCY_WARMUP_S: "1",
        BENCH_LATENCY_TRACE: "0",
      });
      if (r.error) {
        live.delete(system);
        continue;
      }
      const f = r as Result & {
        p50: number;
        p90: number;
        p99: number;
        achievedRate: number;
        n: number;
        statuses: Record<string, number>;
      };
      const finished = (f.statuses.succeeded ?? f.statuses.completed ?? 0) / f.n;
      const first = sweep[system][0];
      const saturated =
        f.achievedRate < 0.8 * rate
          ? `achieved ${f.achievedRate}/s of ${rate}/s offered`
          : finished < 0.99
            ? `${Math.round((1 - finished) * 100)}% of jobs not finished within 10 s`
            : first && f.p99 > Math.max(10 * first.p99, 100)
              ? `p99 ${f.p99} ms, over 10 × the lowest rate's`
              : undefined;
      sweep[system].push({
        rate,
        achievedRate: f.achievedRate,
        p50: f.p50,
        p90: f.p90,
        p99: f.p99,
        finished: Math.round(finished * 1000) / 1000,
        saturated,
        busyBefore: r.busyBefore as number,
        otherCores: r.usage?.cores?.other,
      });
      if (saturated) {
        log(`  sweep: ${scenario} saturated at ${rate}/s (${saturated})`);
        live.delete(system);
      }
    }
  }
  return sweep;
}

function sweepTable(sweep: Sweep): string {
  const lines = [
    "",
    `Latency sweep (${sweep.model}, ${sweep.secondsPerStep} s per rate): submit-to-result (Inferline) and add-to-completed (BullMQ alone), ms`,
    "",
  ];
  lines.push(
    "| offered/s | Inferline achieved/s | p50 | p90 | p99 | other cores | BullMQ achieved/s | p50 | p90 | p99 | other cores | p50 ratio | p99 ratio |",
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  );
  for (const rate of sweep.rates) {
    const a = sweep.inferline.find((s) => s.rate === rate);
    const b = sweep.queue.find((s) => s.rate === rate);
    if (!a && !b) continue;
    const cells = (s?: SweepStep) =>
      s
        ? [
            `${fmt(s.achievedRate)}${s.saturated ? " (saturated)" : ""}`,
            fmt(s.p50, 1),
            fmt(s.p90, 1),
            fmt(s.p99, 1),
            fmt(s.otherCores, 2),
          ]
        : ["—", "—", "—", "—", "—"];
    lines.push(
      `| ${fmt(rate)} | ${[...cells(a), ...cells(b)].join(" | ")} | ${a && b ? fmt(a.p50 / b.p50, 2) : "—"} | ${a && b ? fmt(a.p99 / b.p99, 2) : "—"} |`,
    );
  }
  for (const [name, steps] of [
    ["Inferline", sweep.inferline],
    ["BullMQ", sweep.queue],
  ] as const) {
    const last = steps[steps.length - 1];
    if (last?.saturated) lines.push(`${name} stopped at ${fmt(last.rate)}/s: ${last.saturated}`);
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------ report

const fmt = (x: number | undefined | null, digits = 0) =>
  x === undefined || x === null || Number.isNaN(x)
    ? "—"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A value of a scenario's JSON as table text. */
function text(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return v.toString();
  return JSON.stringify(v);
}

function report(results: Result[], meta: Record<string, unknown>) {
  const get = (model: string, scenario: string) =>
    results.find((r) => r.model === model && r.scenario === scenario && !r.error);
  const rate = (model: string, scenario: string) => get(model, scenario)?.jobsPerSecond;
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);

  const lines: string[] = [];
  const cols = ["raw", "queue-ceiling", "naive", "drain", "submit"];
  lines.push("", "Jobs per second (one job = one row/one request)", "");
  lines.push(
    `| model | ${cols.join(" | ")} | latency p50 / p90 / p99 (ms) | drain/queue-ceiling | drain/naive | drain/raw |`,
  );
  lines.push(`|---|${cols.map(() => "--:").join("|")}|--:|--:|--:|--:|`);
  const ratios: Record<string, Record<string, number | undefined>> = {};
  for (const model of MODELS) {
    const lat = get(model, "latency") as (Result & { p50: number; p90: number; p99: number; rate: number }) | undefined;
    const drain = rate(model, "drain");
    ratios[model] = {
      drainOverQueueCeiling: ratio(drain, rate(model, "queue-ceiling")),
      drainOverNaive: ratio(drain, rate(model, "naive")),
      drainOverRaw: ratio(drain, rate(model, "raw")),
    };
    const rawAdapter = (get(model, "raw") as { withAdapter?: { rowsPerSecond: number } } | undefined)?.withAdapter
      ?.rowsPerSecond;
    ratios[model].drainOverRawWithAdapter = ratio(drain, rawAdapter);
    // What Inferline adds to what it is built on: latency against BullMQ's own floor at the same rate,
    // submit against bare Express under the same client.
    const floor = get(model, "queue-latency") as (Result & { p50: number; p99: number }) | undefined;
    ratios[model].latencyP50OverQueue = ratio(lat?.p50, floor?.p50);
    ratios[model].latencyP99OverQueue = ratio(lat?.p99, floor?.p99);
    ratios[model].submitOverExpressCeiling = ratio(rate(model, "submit"), rate(model, "express-ceiling"));
    // The result cache, hits beside misses in one scenario (bench/scenarios/cache.ts).
    const cache = get(model, "cache") as
      (Result & { cacheHitOverMissJobsPerSecond: number; cacheHitP50OverMiss: number }) | undefined;
    ratios[model].cacheHitOverMissJobsPerSecond = cache?.cacheHitOverMissJobsPerSecond;
    ratios[model].cacheHitP50OverMiss = cache?.cacheHitP50OverMiss;
    const r = ratios[model];
    lines.push(
      `| ${model} | ${cols.map((c) => fmt(rate(model, c))).join(" | ")} | ${lat ? `${fmt(lat.p50, 1)} / ${fmt(lat.p90, 1)} / ${fmt(lat.p99, 1)} @ ${lat.rate}/s` : "—"} | ${fmt(r.drainOverQueueCeiling, 2)} | ${fmt(r.drainOverNaive, 2)} | ${r.drainOverRaw === undefined ? "—" : r.drainOverRaw < 0.01 ? r.drainOverRaw.toExponential(1) : fmt(r.drainOverRaw, 3)} |`,
    );
  }

  const targets: Array<{ target: string; value: string; met: boolean | undefined }> = [];
  const check = (target: string, value: number | undefined, ok: (v: number) => boolean, show: (v: number) => string) =>
    targets.push({
      target,
      value: value === undefined ? "not measured" : show(value),
      met: value === undefined ? undefined : ok(value),
    });
  check(
    "iris drain ≥ 10,000 jobs/s",
    rate("iris", "drain"),
    (v) => v >= 10_000,
    (v) => `${fmt(v)} jobs/s`,
  );
  check(
    "iris drain ≥ 0.7 × queue-ceiling",
    ratios.iris?.drainOverQueueCeiling,
    (v) => v >= 0.7,
    (v) => `${fmt(v, 2)}×`,
  );
  check(
    "iris drain ≥ 3 × naive",
    ratios.iris?.drainOverNaive,
    (v) => v >= 3,
    (v) => `${fmt(v, 2)}×`,
  );
  check(
    "iris submit ≥ 3,000 jobs/s",
    rate("iris", "submit"),
    (v) => v >= 3000,
    (v) => `${fmt(v)} jobs/s`,
  );
  check(
    "ocr-text-line drain ≥ 0.9 × raw (drainOverRaw)",
    ratios["ocr-text-line"]?.drainOverRaw,
    (v) => v >= 0.9,
    (v) => `${fmt(v, 2)}×`,
  );
  const times = (v: number) => `${fmt(v, 2)}×`;
  check(
    "iris latency p50 ≤ 3 × BullMQ add→completed p50 (latencyP50OverQueue)",
    ratios.iris?.latencyP50OverQueue,
    (v) => v <= 3,
    times,
  );
  check(
    "iris latency p99 ≤ 3 × BullMQ add→completed p99 (latencyP99OverQueue)",
    ratios.iris?.latencyP99OverQueue,
    (v) => v <= 3,
    times,
  );
  check(
    "iris submit ≥ 0.8 × a minimal Express 5 app (submitOverExpressCeiling)",
    ratios.iris?.submitOverExpressCeiling,
    (v) => v >= 0.8,
    times,
  );
  check(
    "iris cache hits ≥ 3 × the jobs/s of misses (cacheHitOverMissJobsPerSecond)",
    ratios.iris?.cacheHitOverMissJobsPerSecond,
    (v) => v >= 3,
    times,
  );
  check(
    "iris cache hit p50 ≤ 1/3 of a miss's (cacheHitP50OverMiss)",
    ratios.iris?.cacheHitP50OverMiss,
    (v) => v <= 1 / 3,
    (v) => fmt(v, 3),
  );
  const remote = remoteScoring();
  const from = remote ? ` — bench/score-remote.json of ${remote.date.slice(0, 16)}` : " (run bench/score-remote.ts)";
  check(
    `remote scoring ≤ 55 µs of CPU per row, all processes${from}`,
    remote?.cpuUsPerRow,
    (v) => v <= 55,
    (v) => `${fmt(v, 1)} µs`,
  );
  check(
    `remote scoring ≥ 0.12 × local scoring's rows/s, same script run${from}`,
    remote?.remoteOverLocal,
    (v) => v >= 0.12,
    (v) => `${fmt(v, 3)}×`,
  );
  const irisLat = get("iris", "latency") as (Result & { p50: number; p99: number }) | undefined;
  check(
    "iris latency p50 < 15 ms @ 100/s",
    irisLat?.p50,
    (v) => v < 15,
    (v) => `${fmt(v, 1)} ms`,
  );
  check(
    "iris latency p99 < 50 ms @ 100/s",
    irisLat?.p99,
    (v) => v < 50,
    (v) => `${fmt(v, 1)} ms`,
  );
  const fairness = get("iris", "fairness") as (Result & { fairnessP99Ratio: number }) | undefined;
  check(
    "fairness: light tenant's p99 with a heavy backlog ≤ 2 × with it idle",
    fairness?.fairnessP99Ratio,
    (v) => v <= 2,
    (v) => `${fmt(v, 2)}×`,
  );
  lines.push("", "Targets", "", "| target | measured | |", "|---|--:|:-:|");
  for (const t of targets)
    lines.push(`| ${t.target} | ${t.value} | ${t.met === undefined ? "–" : t.met ? "✓" : "✗"} |`);

  // What explains those ratios: each hop's share of the latency, and CPU per request against bare Express.
  for (const model of MODELS) {
    const lat = get(model, "latency") as
      (Result & { rate: number; breakdown?: Breakdown & { runMsPerBatch: number; jobsPerBatch: number } }) | undefined;
    const floor = get(model, "queue-latency") as (Result & { p50: number; p99: number }) | undefined;
    if (lat?.breakdown) {
      lines.push(
        "",
        `Where the milliseconds go: ${model} latency at ${lat.rate}/s, per hop (INFERLINE_TRACE_HOPS)`,
        "",
      );
      const extra = [
        `worker: mean session run ${fmt(lat.breakdown.runMsPerBatch, 2)} ms per batch of ${fmt(lat.breakdown.jobsPerBatch, 2)} jobs`,
      ];
      if (floor)
        extra.push(
          `BullMQ alone (queue-latency, same rate): add → completed p50 ${fmt(floor.p50, 2)} ms, p99 ${fmt(floor.p99, 2)} ms`,
        );
      lines.push(breakdownTable(lat.breakdown, extra));
    }
    const submit = get(model, "submit");
    const express = get(model, "express-ceiling");
    if (submit && express) {
      const us = (r: Result, role: string) => r.usage?.perJob?.[`${role}CpuUs`];
      lines.push(
        "",
        `CPU per request, ${model}: Inferline's API ${text(us(submit, "api"))} µs (+ PostgreSQL ${text(submit.usage?.perJob?.postgresCpuUs)} µs, Redis ${text(submit.usage?.perJob?.redisProcCpuUs)} µs) at ${fmt(submit.jobsPerSecond)}/s; minimal Express 5 app ${text(us(express, "express"))} µs at ${fmt(express.jobsPerSecond)}/s; the client ${text(us(submit, "self"))} / ${text(us(express, "self"))} µs`,
      );
    }
  }

  // Where the time goes: CPU per job by process group, and round trips per job.
  lines.push(
    "",
    "Cost per job (µs of CPU; bench = the scenario's own processes: worker/API/client) and round trips per job",
    "",
  );
  lines.push(
    "| scenario | model | jobs/s | bench µs | postgres µs | redis µs | other cores | redis cmds | pg xacts | notes |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
  );
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${text(r.scenario)} | ${text(r.model)} | failed: ${text(r.error)} | | | | | | | |`);
      continue;
    }
    const pj = r.usage?.perJob ?? {};
    const notes: string[] = [];
    if (r.scenario === "raw")
      notes.push(
        `best: ${(r.best as { mode: string; batch: number }).mode}, batch ${(r.best as { batch: number }).batch}`,
        (r as { withAdapter?: { rowsPerSecond: number; batch: number } }).withAdapter
          ? `via LoadedModel.run: ${fmt((r as { withAdapter: { rowsPerSecond: number } }).withAdapter.rowsPerSecond)}/s`
          : "",
      );
    if (r.scenario === "drain") {
      const b = r.batches as Record<string, number> | undefined;
      if (b?.inferline_batch_size_items_count)
        notes.push(
          `mean batch ${fmt(b.inferline_batch_size_items_sum! / b.inferline_batch_size_items_count, 1)} jobs, inference ${fmt((b.inferline_inference_duration_seconds_sum ?? 0) * 1000, 0)} ms total`,
        );
      notes.push(`worker ${JSON.stringify(r.worker).replace(/"/g, "")}`);
    }
    if (r.scenario === "queue-ceiling")
      notes.push(`addBulk ${fmt(r.addBulkPerSecond as number)}/s, concurrency ${text(r.concurrency)}`);
    if (r.scenario === "submit")
      notes.push(
        `API ${r.mode === "inproc" ? "in the client's process" : "in its own process"}, concurrency ${text(r.concurrency)}, ${JSON.stringify(r.statuses)}`,
      );
    if (r.scenario === "latency")
      notes.push(`POST alone p50 ${text(r.submitP50)} ms p99 ${text(r.submitP99)} ms; ${JSON.stringify(r.statuses)}`);
    if (r.scenario === "queue-latency")
      notes.push(
        `add → completed p50 ${text(r.p50)} ms p99 ${text(r.p99)} ms at ${text(r.rate)}/s; add alone p50 ${text(r.addP50)} ms; ${JSON.stringify(r.statuses)}`,
      );
    if (r.scenario === "express-ceiling")
      notes.push(
        `minimal Express 5 app${r.lean ? " (lean)" : ""}: ${text(r.usage?.perJob?.expressCpuUs)} µs of its CPU per request, concurrency ${text(r.concurrency)}, ${JSON.stringify(r.statuses)}`,
      );
    if (r.scenario === "naive") notes.push(`concurrency ${text(r.concurrency)}, intraOp ${text(r.intraOpThreads)}`);
    if (r.scenario === "fairness") notes.push(fairnessNote(r));
    if (r.scenario === "cache") notes.push(cacheNote(r));
    lines.push(
      `| ${text(r.scenario)} | ${text(r.model)} | ${fmt(r.jobsPerSecond ?? (r.achievedRate as number))} | ${text(pj.benchCpuUs ?? "—")} | ${text(pj.postgresCpuUs ?? "—")} | ${text(pj.redisProcCpuUs ?? "—")} | ${text(r.usage?.cores?.other ?? "—")} | ${text(pj.redisCommands ?? "—")} | ${text(pj.pgTransactions ?? "—")} | ${notes.filter(Boolean).join("; ")} |`,
    );
  }
  lines.push("", `machine: ${JSON.stringify(meta.machine)}; run ${text(meta.runId)}; ${text(meta.date)}`, "");
  return { text: lines.join("\n"), targets, ratios };
}

/** bench/score-remote.ts's last figures (it runs on its own, with a local run of the same file beside it), if it ran here. */
function remoteScoring(): { cpuUsPerRow: number; remoteOverLocal: number; date: string } | undefined {
  const file = path.join(HERE, "score-remote.json");
  if (!fs.existsSync(file)) return undefined;
  const r = JSON.parse(fs.readFileSync(file, "utf8")) as {
    cpuUsPerRow?: number;
    remoteOverLocal?: number;
    date?: string;
  };
  return r.cpuUsPerRow === undefined || r.remoteOverLocal === undefined
    ? undefined
    : { cpuUsPerRow: r.cpuUsPerRow, remoteOverLocal: r.remoteOverLocal, date: r.date ?? "" };
}

/** The cache scenario's figures in one line: hits beside misses, jobs and a batch. */
function cacheNote(r: Result): string {
  type Side = { jobsPerSecond: number; p50: number; p99: number };
  const c = r as Result & {
    hit: Side;
    miss: Side;
    bypass?: Side;
    batch: { items: number; hit: { itemsPerSecond: number }; miss: { itemsPerSecond: number } };
  };
  const side = (s: Side) => `${fmt(s.jobsPerSecond)} jobs/s, p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms`;
  return `concurrency ${text(r.concurrency)}: hits ${side(c.hit)}; misses ${side(c.miss)}${c.bypass ? `; bypass ${side(c.bypass)}` : ""}; a ${fmt(c.batch.items)}-item batch ${fmt(c.batch.hit.itemsPerSecond)} items/s all hits, ${fmt(c.batch.miss.itemsPerSecond)} never scored`;
}

/** The fairness scenario's figures in one line: the light tenant's latency with the heavy one idle, and behind its backlog. */
function fairnessNote(r: Result): string {
  type Summary = { p50: number; p99: number; n: number };
  const f = r as Result & {
    idle: Summary;
    contended: Summary;
    whileBacklogged: Summary;
    backlogSeconds: number;
    fairnessP99Ratio: number;
  };
  const pair = (s: Summary) => `p50 ${fmt(s.p50, 1)} / p99 ${fmt(s.p99, 1)} ms`;
  return `B at ${text(r.rate)}/s: A idle ${pair(f.idle)}; behind A's backlog ${pair(f.contended)} (ratio ${fmt(f.fairnessP99Ratio, 2)}); the ${f.whileBacklogged.n} submitted while A had work queued (${fmt(f.backlogSeconds, 1)} s) ${pair(f.whileBacklogged)}`;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = Date.now();
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
  log(
    `inferline bench ${runId}: models ${MODELS.join(", ")}; scenarios ${SCENARIOS.join(", ")}${SCALE !== 1 ? `; scale ${SCALE}` : ""}`,
  );
  await recreateDatabase();
  const db = new Database(databaseUrl, { poolSize: 1 });
  const { key, tenant } = await new TenantStore(db.pool, db.prisma).createKey("bench");
  await db.close();
  if (PROFILE) fs.mkdirSync(path.join(HERE, "profiles"), { recursive: true });
  const sink = OTEL ? await OtlpSink.start() : undefined;
  const env = {
    BENCH_DATABASE_URL: databaseUrl,
    BENCH_REDIS_URL: redisUrl,
    BENCH_RUN_ID: runId,
    BENCH_TENANT_ID: tenant.id,
    BENCH_API_KEY: key,
    ...(sink ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } : {}),
  };

  const results: Result[] = [];
  const sweeps: Sweep[] = [];
  try {
    for (const model of MODELS) {
      for (const scenario of SCENARIOS) {
        if (!(scenario in (PLAN[model] ?? {}))) continue;
        if (scenario === "latency-sweep") {
          sweeps.push(await runSweep(model, env));
          continue;
        }
        const extra: Record<string, string> = {};
        // OCR latency at a rate the worker sustains here: half its measured drain rate, at most 20/s.
        const drained = results.find((r) => r.model === model && r.scenario === "drain")?.jobsPerSecond;
        if (scenario === "latency" && model !== "iris" && !process.env.BENCH_LATENCY_RATE && drained)
          extra.BENCH_LATENCY_RATE = String(Math.max(1, Math.min(20, Math.floor(drained / 2))));
        results.push(await runScenario(model, scenario, { ...env, ...extra }));
      }
    }
  } finally {
    await cleanup();
  }

  const meta = {
    runId,
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    command: `npx pnpm@10 bench ${args.join(" ")}`.trim(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 29) / 2,
      node: process.version,
      os: `${os.type()} ${os.release()}`,
      loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
  };
  const { text, targets, ratios } = report(results, meta);
  process.stdout.write(`${text}\n`);
  for (const sweep of sweeps) {
    process.stdout.write(`${sweepTable(sweep)}\n\n`);
    const subtitle = [
      `${meta.date.slice(0, 10)}, ${meta.machine.cpus} cores (${meta.machine.cpuModel ?? "?"}): client, API, worker, PostgreSQL and Redis on one machine`,
      `open-loop paced client, ${sweep.secondsPerStep} s per offered rate (${sweep.rates.join(", ")}/s) up to saturation`,
    ];
    const chart = path.join(HERE, "latency-chart.svg");
    fs.writeFileSync(
      chart,
      await latencyChartSvg({ Inferline: sweep.inferline, "BullMQ alone (add → completed)": sweep.queue }, subtitle),
    );
    log(`wrote ${path.relative(ROOT, chart)}`);
  }
  const fairnessP99Ratio = (
    results.find((r) => r.scenario === "fairness" && !r.error) as { fairnessP99Ratio?: number } | undefined
  )?.fairnessP99Ratio;
  fs.writeFileSync(
    path.join(HERE, "results.json"),
    `${JSON.stringify({ ...meta, targets, ratios, fairnessP99Ratio, results, ...(sweeps.length ? { sweep: sweeps } : {}) }, null, 2)}\n`,
  );
  log(`wrote bench/results.json (${meta.durationSeconds} s in all)`);
  if (sink) log(`tracing on (--otel): ${sink.summary()}`);
  await sink?.close();
}

main().catch(async (err: unknown) => {
  console.error(err);
  await cleanup();
  process.exit(1);
});
