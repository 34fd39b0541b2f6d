/**
 * `inferline score` in local mode, end to end: a generated iris CSV → JSONL, the CLI run as a
 * child process exactly as a user runs it, measured by /usr/bin/time -v (peak RSS, wall time).
 *
 *   node_modules/.bin/tsx bench/score-local.ts                 # 1,000,000 rows, 3 runs
 *   ROWS=200000 RUNS=1 THREADS=2 node_modules/.bin/tsx bench/score-local.ts
 *
 * Reports, per run and as the median: rows/s of the scoring pipeline (the CLI's own summary, from
 * the model loaded to the output fsynced), rows/s over the whole process (start-up included), wall
 * time and peak RSS; writes them to bench/score-local.json.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 3);
const THREADS = process.env.THREADS;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TIME = "/usr/bin/time";

function generate(file: string): void {
  let seed = 42;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 4294967296;
  };
  const fd = fs.openSync(file, "w");
  let s = "id,sepal_length,sepal_width,petal_length,petal_width\n";
  for (let i = 0; i < ROWS; i++) {
    s += `r${i},${(4 + rand() * 4).toFixed(1)},${(2 + rand() * 2.5).toFixed(1)},${(1 + rand() * 6).toFixed(1)},${(0.1 + rand() * 2.4).toFixed(1)}\n`;
    if (s.length > 1 << 20) {
      fs.writeSync(fd, s);
      s = "";
    }
  }
  fs.writeSync(fd, s);
  fs.closeSync(fd);
}

interface RunResult {
  pipelineRowsPerSecond: number;
  pipelineSeconds: number;
  processRowsPerSecond: number;
  wallSeconds: number;
  peakRssMb: number;
}

function elapsedSeconds(text: string): number {
  // "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:04.12"
  const m = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
  if (!m) throw new Error("no wall time in /usr/bin/time output");
  return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

function runOnce(input: string, out: string): RunResult {
  const args = [
    "-v",
    process.execPath,
    "--import",
    "tsx",
    "apps/cli/src/main.ts",
    "score",
    input,
    "--model",
    "iris",
    "--out",
    out,
    "--progress",
    "off",
  ];
  if (THREADS) args.push("--threads", THREADS);
  const r = spawnSync(TIME, args, { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`the CLI exited ${r.status}: ${r.stderr}`);
  const summary = /([\d,]+) rows scored, ([\d,]+) failed.*?, ([\d,]+) rows\/s, wall time ([\d.]+) s/.exec(r.stderr);
  if (!summary) throw new Error(`no summary line in: ${r.stderr}`);
  const rows = Number(summary[1]!.replaceAll(",", ""));
  if (rows !== ROWS) throw new Error(`scored ${rows} rows, expected ${ROWS}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const wall = elapsedSeconds(r.stderr);
  return {
    pipelineRowsPerSecond: Number(summary[3]!.replaceAll(",", "")),
    pipelineSeconds: Number(summary[4]),
    processRowsPerSecond: Math.round(rows / wall),
    wallSeconds: wall,
    peakRssMb: Math.round(Number(rss?.[1] ?? 0) / 1024),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function main(): void {
  if (!fs.existsSync(TIME)) throw new Error(`${TIME} is needed (apt-get install time)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-bench-score-"));
  try {
    const input = path.join(dir, "iris.csv");
    generate(input);
    const runs: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      const out = path.join(dir, `out-${i}.jsonl`);
      const r = runOnce(input, out);
      fs.rmSync(out, { force: true });
      runs.push(r);
      console.log(
        `run ${i + 1}: pipeline ${r.pipelineRowsPerSecond.toLocaleString("en-US")} rows/s (${r.pipelineSeconds} s), ` +
          `whole process ${r.processRowsPerSecond.toLocaleString("en-US")} rows/s (${r.wallSeconds} s), peak RSS ${r.peakRssMb} MB`,
      );
    }
    const result = {
      benchmark: "inferline score, local mode, iris, CSV → JSONL",
      command: `node --import tsx apps/cli/src/main.ts score <${ROWS}-row csv> --model iris --out <file> --progress off${THREADS ? ` --threads ${THREADS}` : ""}`,
      rows: ROWS,
      inputBytes: fs.statSync(input).size,
      cpus: os.cpus().length,
      loadAverageAtEnd: os.loadavg()[0],
      date: new Date().toISOString(),
      median: {
        pipelineRowsPerSecond: median(runs.map((r) => r.pipelineRowsPerSecond)),
        processRowsPerSecond: median(runs.map((r) => r.processRowsPerSecond)),
        wallSeconds: median(runs.map((r) => r.wallSeconds)),
        peakRssMb: median(runs.map((r) => r.peakRssMb)),
      },
      maxPeakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
      runs,
    };
    console.log(JSON.stringify(result.median));
    fs.writeFileSync(path.join(ROOT, "bench/score-local.json"), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
