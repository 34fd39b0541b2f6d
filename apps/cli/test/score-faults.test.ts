import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestModelRepository, FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE } from "@inferline/testing";
import { runScore } from "./support/score-cli.ts";

// `inferline score` in local mode on the test-only fault models, run as the real CLI in a child
// process with real pool threads and onnxruntime: each model answers like `lookup` except for an
// index of 2, which ends its thread (crash) or busy-loops past the manifest's 500 ms timeoutMs
// (hang). The chunk holding that row runs twice, on a replaced thread each time, and its rows go
// to the errors file; every other chunk scores, on one thread that keeps being replaced.

const ROWS = 40;
const POISONED = 17;

let fixtures: { dir: string; remove(): void };
let dir: string;

beforeAll(() => {
  fixtures = createTestModelRepository({ faultModels: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-score-faults-"));
});
afterAll(() => {
  fixtures?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const indexOf = (row: number): number => (row === POISONED ? 2 : row % 2);

/** One JSONL line of v2 tensors per row (line i + 1 holds row i). */
function writeInput(file: string): void {
  const lines = Array.from({ length: ROWS }, (_, i) =>
    JSON.stringify({ id: `r${i}`, inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [indexOf(i)] }] }),
  );
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
}

const cli = (args: string[]) =>
  runScore(args, { MODELS_DIR: fixtures.dir, INFERENCE_ADAPTER_MODULES: FIXTURE_ADAPTERS_MODULE });

const jsonLines = (file: string): Array<Record<string, unknown>> =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("inferline score (local) when a chunk's run kills or hangs its thread", () => {
  it.each([
    ["crash", "inference_crashed", /exit code 1/],
    ["hang", "inference_timeout", /took longer than 500 ms/],
  ])(
    "%s: the chunk runs again on a replaced thread, then its rows fail with %s; the rest of the file scores",
    async (model, code, why) => {
      const input = path.join(dir, `${model}.jsonl`);
      writeInput(input);
      const out = path.join(dir, `${model}.out.jsonl`);
      // Chunks of a few lines each, one thread: every chunk after the bad one runs on a replacement.
      const run = await cli([
        input,
        "--model",
        model,
        "--out",
        out,
        "--chunk-size",
        "300",
        "--threads",
        "1",
        "--progress",
        "off",
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/scoring them again/);

      const scored = jsonLines(out);
      const errors = jsonLines(`${out}.errors.jsonl`);
      // Every row exactly once, in one file or the other; the bad row and only its chunk-mates failed.
      expect([...scored, ...errors].map((r) => r.line).sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: ROWS }, (_, i) => i + 1),
      );
      expect(errors.map((e) => e.id)).toContain(`r${POISONED}`);
      expect(errors.length).toBeLessThan(ROWS / 4);
      for (const e of errors) {
        expect(e.error).toMatch(new RegExp(`^${code}: `));
        expect(e.error).toMatch(why);
      }
      expect(run.stderr).toMatch(new RegExp(`${ROWS - errors.length} rows scored, ${errors.length} failed`));
      for (const row of scored) {
        const i = Number(row.line) - 1;
        expect(row).toEqual({ line: i + 1, id: `r${i}`, outputs: { values: LOOKUP_TABLE[indexOf(i)] } });
      }
      // Rows after the bad chunk scored: the run went on, on a replaced thread.
      expect(scored.some((r) => Number(r.line) > POISONED + 1 + errors.length)).toBe(true);
    },
    60_000,
  );
});
