import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import Papa from "papaparse";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `inferline score` in local mode, run as the real CLI in a child process, against a real
// onnxruntime session in this process for the expected values.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");
const IRIS = path.join(ROOT, "models/iris/iris.onnx");
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"] as const;
const LABELS = ["setosa", "versicolor", "virginica"];

let dir: string;
let session: ort.InferenceSession;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-score-"));
  session = await ort.InferenceSession.create(IRIS, { intraOpNumThreads: 1 });
});

afterAll(async () => {
  await session?.release();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A seeded generator, so every run scores the same rows. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function irisRows(n: number, seed = 1): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () =>
    [4 + r() * 4, 2 + r() * 2.5, 1 + r() * 6, 0.1 + r() * 2.4].map((v) => Math.round(v * 10) / 10),
  );
}

/** Writes a CSV of `rows` with an id column; `header` may reorder/rename columns. */
function writeCsv(file: string, rows: number[][], header = ["id", ...FEATURES]): void {
  const fd = fs.openSync(file, "w");
  let s = `${header.join(",")}\n`;
  rows.forEach((row, i) => {
    s += `r${i},${row.join(",")}\n`;
    if (s.length > 1 << 20) {
      fs.writeSync(fd, s);
      s = "";
    }
  });
  fs.writeSync(fd, s);
  fs.closeSync(fd);
}

async function reference(rows: number[][]): Promise<Float32Array> {
  const x = new Float32Array(rows.length * 4);
  rows.forEach((row, i) => x.set(row, i * 4));
  const out = await session.run({ features: new ort.Tensor("float32", x, [rows.length, 4]) });
  return out.probabilities!.data as Float32Array;
}

/** Scored probabilities equal the in-process run (to float32 rounding across batch sizes), label = argmax. */
function expectScored(probabilities: Record<string, number>, label: string, expected: Float32Array, row: number): void {
  const want = [expected[row * 3]!, expected[row * 3 + 1]!, expected[row * 3 + 2]!];
  const close = LABELS.every((l, k) => Math.abs(probabilities[l]! - want[k]!) < 1e-6);
  const sorted = [...want].sort((a, b) => b - a);
  const labelOk = sorted[0]! - sorted[1]! <= 1e-5 || label === LABELS[want.indexOf(sorted[0]!)];
  if (!close || !labelOk)
    expect({ row, label, probabilities }).toEqual({
      row,
      label: LABELS[want.indexOf(sorted[0]!)],
      probabilities: Object.fromEntries(LABELS.map((l, k) => [l, want[k]])),
    });
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], input?: string): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "score", ...args], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

const cli = (args: string[], input?: string): Promise<Run> => start(args, input).done;

const jsonLines = (file: string): Array<Record<string, unknown>> =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function until<T>(what: string, probe: () => T | undefined, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function readCheckpoint(file: string): { rows: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as { rows: number };
  } catch {
    return undefined;
  }
}

describe("inferline score (local)", () => {
  it("scores a CSV into JSONL in input order, matching onnxruntime, with header names matched case-insensitively", async () => {
    const rows = irisRows(2_000, 7);
    const input = path.join(dir, "basic.csv");
    // Columns in another order, other case, and an extra column that is ignored.
    const fd = fs.openSync(input, "w");
    fs.writeSync(fd, "Petal_Width,ID,sepal_length,note,SEPAL_WIDTH,petal_length\n");
    rows.forEach((r, i) => fs.writeSync(fd, `${r[3]},r${i},${r[0]},x,${r[1]},${r[2]}\n`));
    fs.closeSync(fd);
    const out = path.join(dir, "basic.jsonl");

    const run = await cli([input, "--model", "iris", "--out", out]);
    expect(run.stderr).toMatch(/2,000 rows scored, 0 failed/);
    expect(run.code).toBe(0);

    const expected = await reference(rows);
    const lines = jsonLines(out);
    expect(lines).toHaveLength(rows.length);
    lines.forEach((l, i) => {
      expect(l.line).toBe(i + 2); // the header is line 1
      expect(l.id).toBe(`r${i}`);
      expectScored(l.probabilities as Record<string, number>, l.label as string, expected, i);
    });
    expect(fs.existsSync(`${out}.errors.jsonl`)).toBe(false);
    expect(fs.existsSync(`${out}.checkpoint.json`)).toBe(false);
  });

  it("scores JSONL (named features, flat objects, v2 tensors) from stdin into CSV", async () => {
    const rows = irisRows(300, 11);
    const named = (r: number[]) => Object.fromEntries(FEATURES.map((f, k) => [f, r[k]]));
    const text = rows
      .map((r, i) => {
        if (i % 3 === 0) return JSON.stringify({ id: i, features: named(r) });
        if (i % 3 === 1) return JSON.stringify({ customId: `c${i}`, ...named(r) });
        return JSON.stringify({ inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: r }] });
      })
      .join("\n");
    const run = await cli(["-", "--model", "iris", "--format", "csv"], `${text}\n`);
    expect(run.code).toBe(0);

    const parsed = Papa.parse<string[]>(run.stdout.trimEnd(), { delimiter: ",", newline: "\n" }).data;
    expect(parsed[0]).toEqual(["line", "id", "label", "prob_setosa", "prob_versicolor", "prob_virginica"]);
    const expected = await reference(rows);
    expect(parsed).toHaveLength(rows.length + 1);
    parsed.slice(1).forEach((rec, i) => {
      expect(Number(rec[0])).toBe(i + 1);
      expect(rec[1]).toBe(i % 3 === 0 ? String(i) : i % 3 === 1 ? `c${i}` : "");
      expectScored(
        { setosa: Number(rec[3]), versicolor: Number(rec[4]), virginica: Number(rec[5]) },
        rec[2]!,
        expected,
        i,
      );
    });
  });

  it("keeps input order across many chunks and several threads", async () => {
    const rows = irisRows(50_000, 3);
    const input = path.join(dir, "order.csv");
    writeCsv(input, rows);
    const out = path.join(dir, "order.jsonl");

    const run = await cli([input, "--model", "iris", "--out", out, "--chunk-size", "4096", "--threads", "3"]);
    expect(run.code).toBe(0);

    const expected = await reference(rows);
    const lines = jsonLines(out);
    expect(lines).toHaveLength(rows.length);
    expect(lines.every((l, i) => l.line === i + 2 && l.id === `r${i}`)).toBe(true);
    lines.forEach((l, i) => expectScored(l.probabilities as Record<string, number>, l.label as string, expected, i));
  });

  it("sends bad rows to the errors file with their line numbers, scores the rest, and exits 1", async () => {
    const csv = path.join(dir, "bad.csv");
    fs.writeFileSync(
      csv,
      [
        "id,sepal_length,sepal_width,petal_length,petal_width",
        "a,5.1,3.5,1.4,0.2",
        "b,,3.0,1.4,0.2", // line 3: empty
        "c,6.2,abc,4.5,1.5", // line 4: text
        "",
        '"d\nsplit",6.3,3.3,6.0,2.5', // lines 6-7: a quoted id over two lines
        "e,5.9,3.0", // line 8: too few fields
        "f,5.0,3.4,1.5,0.2",
      ].join("\n") + "\n",
    );
    const out = path.join(dir, "bad.jsonl");
    const run = await cli([csv, "--model", "iris", "--out", out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/3 rows scored, 3 failed/);
    expect(jsonLines(out).map((l) => [l.line, l.id])).toEqual([
      [2, "a"],
      [6, "d\nsplit"],
      [9, "f"],
    ]);
    const errors = jsonLines(`${out}.errors.jsonl`);
    expect(errors.map((e) => e.line)).toEqual([3, 4, 8]);
    expect(errors[0]!.error).toMatch(/sepal_length.*empty/);
    expect(errors[1]!.error).toMatch(/sepal_width.*"abc".*not a number/);
    expect(errors[2]!.error).toMatch(/petal_length.*missing/);

    const jsonl = path.join(dir, "bad.jsonl.in.jsonl");
    fs.writeFileSync(
      jsonl,
      [
        JSON.stringify({
          id: 1,
          features: { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
        }),
        '{"id": 2, "features": {"sepal_length": 5.1,', // malformed JSON
        JSON.stringify({
          id: 3,
          features: { sepal_length: 5.1, sepal_width: "x", petal_length: 1.4, petal_width: 0.2 },
        }),
        JSON.stringify({ id: 4, sepal_length: 6.1, sepal_width: 2.8, petal_length: 4.7, petal_width: 1.2 }),
      ].join("\n"),
    );
    const out2 = path.join(dir, "bad2.jsonl");
    const run2 = await cli([jsonl, "--model", "iris", "--out", out2]);
    expect(run2.code).toBe(1);
    expect(jsonLines(out2).map((l) => l.line)).toEqual([1, 4]);
    const errors2 = jsonLines(`${out2}.errors.jsonl`);
    expect(errors2.map((e) => e.line)).toEqual([2, 3]);
    expect(errors2[0]!.error).toMatch(/malformed JSON/);
    expect(errors2[1]).toMatchObject({ id: 3 });
  });

  it("fails with exit 2 and one clear message on a missing column, a missing file or an unknown model", async () => {
    const csv = path.join(dir, "cols.csv");
    fs.writeFileSync(csv, "sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n");
    const out = path.join(dir, "cols.jsonl");
    const run = await cli([csv, "--model", "iris", "--out", out]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^inferline: the CSV header lacks column "petal_width" needed by model iris/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.existsSync(out)).toBe(false);

    const missing = await cli([path.join(dir, "nope.csv"), "--model", "iris"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(`inferline: input file ${path.join(dir, "nope.csv")} does not exist`);

    const unknown = await cli([csv, "--model", "no-such-model"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^inferline: model "no-such-model" was not found; the models are: .*iris/);
  });

  describe("resume", () => {
    let input: string;
    let uninterrupted: string;
    // Small chunks and frequent checkpoints: many cut points to be killed between.
    const flags = ["--model", "iris", "--chunk-size", "16384", "--checkpoint-interval", "50", "--threads", "2"];

    beforeAll(async () => {
      const rows = irisRows(400_000, 5);
      rows[1234]![2] = Number.NaN; // a failed row: the errors file must come out identical too
      input = path.join(dir, "resume.csv");
      writeCsv(input, rows);
      uninterrupted = path.join(dir, "uninterrupted.jsonl");
      const run = await cli([input, "--out", uninterrupted, ...flags]);
      expect(run.code).toBe(1);
    }, 60_000);

    async function interrupt(out: string, how: NodeJS.Signals): Promise<Run> {
      const { child, done } = start([input, "--out", out, ...flags]);
      const cp = `${out}.checkpoint.json`;
      const at = await until("a checkpoint with scored rows", () => {
        const c = readCheckpoint(cp);
        return c && c.rows > 0 ? c : undefined;
      });
      child.kill(how);
      const run = await done;
      expect(at.rows).toBeLessThan(400_000);
      expect(readCheckpoint(cp)!.rows).toBeLessThan(400_000); // stopped before the end
      return run;
    }

    it("continues after kill -9 with output byte-identical to an uninterrupted run", async () => {
      const out = path.join(dir, "killed.jsonl");
      const killed = await interrupt(out, "SIGKILL");
      expect(killed.signal).toBe("SIGKILL");

      const again = await cli([input, "--out", out, ...flags]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/add --resume to continue it, or --force to start over/);

      const resumed = await cli([input, "--out", out, "--resume", ...flags]);
      expect(resumed.stderr).toMatch(/resumed after/);
      expect(resumed.code).toBe(1);
      expect(fs.readFileSync(out).equals(fs.readFileSync(uninterrupted))).toBe(true);
      expect(fs.readFileSync(`${out}.errors.jsonl`).equals(fs.readFileSync(`${uninterrupted}.errors.jsonl`))).toBe(
        true,
      );
      expect(fs.existsSync(`${out}.checkpoint.json`)).toBe(false);
    }, 60_000);

    it("stops on Ctrl-C with exit 130 and a checkpoint, then resumes to the same output", async () => {
      const out = path.join(dir, "sigint.jsonl");
      const stopped = await interrupt(out, "SIGINT");
      expect(stopped.code).toBe(130);
      expect(stopped.stderr).toMatch(/interrupted; rerun with --resume/);

      const resumed = await cli([input, "--out", out, "--resume", ...flags]);
      expect(resumed.code).toBe(1);
      expect(fs.readFileSync(out).equals(fs.readFileSync(uninterrupted))).toBe(true);
    }, 60_000);
  });
});
