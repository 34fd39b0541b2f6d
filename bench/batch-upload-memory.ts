/**
 * The API's memory while it creates batches from large bodies: one ~100 MB NDJSON batch (100,000
 * iris items of 25 rows each), the same batch as one JSON body, and four NDJSON uploads of it at
 * once (two tenants). Creation only: no worker runs, nothing is scored.
 *
 *   node_modules/.bin/tsx bench/batch-upload-memory.ts
 *   API_ROOT=/path/to/another/checkout node_modules/.bin/tsx bench/batch-upload-memory.ts   # that checkout's API
 *   ITEMS=50000 ROWS=25 SCENARIOS=ndjson,json,concurrent node_modules/.bin/tsx bench/batch-upload-memory.ts
 *
 * The API runs as a child process with bench/support/heap-probe.mjs preloaded, which samples
 * process.memoryUsage() every 5 ms (so a peak shorter than that can be missed) after a forced GC
 * at the start of each scenario. Prints each scenario's heap and RSS growth over that baseline,
 * wall time and API CPU seconds; writes bench/batch-upload-memory.json. PROBE_GC_MS=100 also forces
 * a full GC every 100 ms and reports the largest heap left after one ("live heap"): what the API
 * really holds, where heap growth also counts garbage not yet collected (it slows the API down).
 * HEAP_MB=N runs the API with --max-old-space-size=N. Uses its own database
 * (inferline_bench_upload, dropped at the end) and queue prefix.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Redis } from "ioredis";
import { Database, migrate, TenantStore } from "@inferline/db";

const ITEMS = Number(process.env.ITEMS ?? 100_000);
const ROWS = Number(process.env.ROWS ?? 25);
const SCENARIOS = (process.env.SCENARIOS ?? "ndjson,json,concurrent").split(",");
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const API_ROOT = path.resolve(process.env.API_ROOT ?? ROOT);
const PROBE = path.join(ROOT, "bench/support/heap-probe.mjs");
const DB = "inferline_bench_upload";
const DATABASE_URL = `postgresql://postgres@127.0.0.1:5432/${DB}`;
const PREFIX = `bench-upload-${process.pid}`;
const PORT = 3800 + (process.pid % 100);
const MB = 1024 * 1024;

interface Memory {
  heapUsed: number;
  /** Largest heap left after a forced GC (PROBE_GC_MS only). */
  live?: number;
  rss: number;
  arrayBuffers: number;
}

/** One item per line: 25 rows of 4 features with 6 decimals (about 1 KB), seeded so every run sends the same bytes. */
function itemLines(): string[] {
  let seed = 11;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  return Array.from({ length: ITEMS }, (_, i) => {
    const data = Array.from({ length: ROWS * 4 }, () => (1 + rand() * 6).toFixed(6));
    return `{"customId":"row-${i}","inputs":[{"name":"features","datatype":"FP32","shape":[${ROWS},4],"data":[${data.join(",")}]}]}`;
  });
}

function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function ask(api: ChildProcess, message: string): Promise<{ baseline: Memory; peak?: Memory }> {
  return new Promise((resolve) => {
    api.once("message", (m) => resolve(m as { baseline: Memory; peak?: Memory }));
    api.send(message);
  });
}

/** POSTs `body` in 1 MB writes; resolves with the status and the answer's text. */
function upload(
  pathAndQuery: string,
  apiKey: string,
  contentType: string,
  body: Buffer,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: PORT,
      path: pathAndQuery,
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": contentType, "content-length": body.length },
    });
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject);
    let at = 0;
    const pump = () => {
      while (at < body.length) {
        const ok = req.write(body.subarray(at, (at += MB)));
        if (!ok) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
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

const admin = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
await admin.connect();
await admin.query(`drop database if exists ${DB} with (force)`);
await admin.end();
await migrate(DATABASE_URL);
const db = new Database(DATABASE_URL, { poolSize: 1 });
const tenants = new TenantStore(db.pool, db.prisma);
const keys = [(await tenants.createKey("bench-a")).key, (await tenants.createKey("bench-b")).key];
await db.close();

const lines = itemLines();
const ndjson = Buffer.from(lines.join("\n") + "\n");
const json = Buffer.from(`{"model":"iris","items":[${lines.join(",")}]}`);
lines.length = 0;
console.log(
  `body: ${ITEMS} items of ${ROWS} rows; NDJSON ${(ndjson.length / MB).toFixed(1)} MiB, JSON ${(json.length / MB).toFixed(1)} MiB; API from ${API_ROOT}`,
);

const heapFlag = process.env.HEAP_MB ? [`--max-old-space-size=${process.env.HEAP_MB}`] : [];
const api = spawn(
  process.execPath,
  [...heapFlag, "--expose-gc", "--import", "tsx", "--import", PROBE, "apps/api/src/main.ts"],
  {
    cwd: API_ROOT,
    env: {
      ...process.env,
      DATABASE_URL,
      QUEUE_PREFIX: PREFIX,
      PORT: String(PORT),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      RATE_LIMIT_PER_SECOND: "0",
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  },
);
const results: Record<string, unknown>[] = [];
try {
  await waitFor(`http://127.0.0.1:${PORT}/readyz`);
  const scenarios: Record<string, () => Promise<Array<{ status: number; text: string }>>> = {
    ndjson: async () => [await upload("/v1/batches?model=iris", keys[0]!, "application/x-ndjson", ndjson)],
    json: async () => [await upload("/v1/batches", keys[0]!, "application/json", json)],
    concurrent: () =>
      Promise.all(
        [0, 1, 2, 3].map((i) => upload("/v1/batches?model=iris", keys[i % 2]!, "application/x-ndjson", ndjson)),
      ),
  };
  for (const name of SCENARIOS) {
    const { baseline } = await ask(api, "reset");
    const cpu0 = cpuSeconds(api.pid);
    const started = performance.now();
    const answers = await scenarios[name]!().catch((err: Error) => err);
    if (answers instanceof Error) {
      // An API out of memory dies mid-upload: the client sees its connection reset.
      results.push({
        scenario: name,
        statuses: `failed: ${answers.message}${api.exitCode !== null || api.signalCode ? ` (API exited: ${api.exitCode ?? api.signalCode})` : ""}`,
      });
      break;
    }
    const seconds = (performance.now() - started) / 1000;
    const { peak } = await ask(api, "report");
    const statuses = answers.map((a) => a.status);
    if (statuses.some((s) => s !== 202))
      console.error(`${name}: ${answers.map((a) => `${a.status} ${a.text.slice(0, 200)}`).join("; ")}`);
    results.push({
      scenario: name,
      statuses: statuses.join(","),
      "heap growth MiB": Number(((peak!.heapUsed - baseline.heapUsed) / MB).toFixed(1)),
      ...(process.env.PROBE_GC_MS
        ? { "live heap growth MiB": Number(((peak!.live! - baseline.heapUsed) / MB).toFixed(1)) }
        : {}),
      "RSS growth MiB": Number(((peak!.rss - baseline.rss) / MB).toFixed(1)),
      "buffers peak MiB": Number((peak!.arrayBuffers / MB).toFixed(1)),
      seconds: Number(seconds.toFixed(2)),
      "API CPU s": Number((cpuSeconds(api.pid) - cpu0).toFixed(2)),
    });
  }
  console.table(results);
  const out = {
    items: ITEMS,
    rows: ROWS,
    ndjsonBytes: ndjson.length,
    jsonBytes: json.length,
    apiRoot: API_ROOT,
    results,
    cpus: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(ROOT, "bench/batch-upload-memory.json"), JSON.stringify(out, null, 2) + "\n");
} finally {
  api.kill("SIGTERM");
  await new Promise((r) => (api.exitCode !== null ? r(null) : api.on("exit", r)));
  const redis = new Redis("redis://127.0.0.1:6379");
  const stale = await redis.keys(`${PREFIX}:*`);
  if (stale.length > 0) await redis.del(...stale);
  redis.disconnect();
  const cleanup = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
  await cleanup.connect();
  await cleanup.query(`drop database if exists ${DB} with (force)`);
  await cleanup.end();
}
