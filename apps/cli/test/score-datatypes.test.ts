import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Datatype, type TensorElement } from "@inferline/contracts";
import { createTestModelRepository, DATATYPE_SAMPLES, ECHO_WIDTH, echoModelName } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { runScore } from "./support/score-cli.ts";

// `inferline score` over echo models of every datatype (built with onnx-proto, see
// @inferline/testing): local scoring writes what the model gave back exactly, and remote scoring
// (through a real API and worker) writes the very same bytes.

let dir: string;
let models: { dir: string; remove(): void };
let cluster: TestCluster;
let key: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-datatypes-"));
  models = createTestModelRepository({ echoModels: true });
  cluster = await startCluster({ modelsDir: models.dir, workerModels: Datatype.options.map(echoModelName).join(",") });
  ({ key } = await cluster.createKey("datatypes"));
});

afterAll(async () => {
  await cluster?.close();
  models?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Two JSONL lines of v2 tensors: the sample row, then the row reversed. */
function writeInput(datatype: Datatype): string {
  const file = path.join(dir, `${datatype}.jsonl`);
  const row = DATATYPE_SAMPLES[datatype].input;
  const line = (data: TensorElement[]) =>
    JSON.stringify({ inputs: [{ name: "x", datatype, shape: [1, ECHO_WIDTH], data }] });
  fs.writeFileSync(file, `${line(row)}\n${line([...row].reverse())}\n`);
  return file;
}

async function score(datatype: Datatype, out: string, extra: string[] = []): Promise<string> {
  const run = await runScore(
    [
      writeInput(datatype),
      "--model",
      echoModelName(datatype),
      "--out",
      out,
      "--threads",
      "1",
      "--progress",
      "off",
      ...extra,
    ],
    { MODELS_DIR: models.dir },
  );
  expect(run.stderr).toContain("0 failed");
  expect(run.code).toBe(0);
  return fs.readFileSync(out, "utf8");
}

const text = (base64: unknown): string => Buffer.from(base64 as string, "base64").toString("utf8");

/** FP16 and FP32 are written in at most 9 digits, which read back to the same float32. */
const asWritten = (datatype: Datatype, values: TensorElement[]): TensorElement[] =>
  datatype === "FP16" || datatype === "FP32" ? values.map((v) => Math.fround(v as number)) : values;

describe("inferline score, every datatype", () => {
  it.each(Datatype.options)("%s: local scoring writes the model's outputs exactly", async (datatype) => {
    const lines = (await score(datatype, path.join(dir, `${datatype}-local.jsonl`)))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const sample = DATATYPE_SAMPLES[datatype];
    expect(lines.map((l) => l.line)).toEqual([1, 2]);
    lines.forEach((l, i) => {
      const order = <T>(values: T[]): T[] => (i === 1 ? [...values].reverse() : values);
      expect(asWritten(datatype, l.outputs.y)).toEqual(order(sample.y));
      expect(l.outputs.seen.map(text)).toEqual(order(sample.seen));
    });
  });

  it.each<Datatype>(["BOOL", "INT64", "FP16", "BYTES"])(
    "%s: remote scoring writes the same bytes as local scoring, JSONL and CSV",
    async (datatype) => {
      for (const format of ["jsonl", "csv"]) {
        const local = await score(datatype, path.join(dir, `${datatype}-local-both.${format}`), ["--format", format]);
        const remote = await score(datatype, path.join(dir, `${datatype}-remote.${format}`), [
          "--format",
          format,
          "--remote",
          cluster.api.url,
          "--api-key",
          key,
        ]);
        expect(remote).toBe(local);
      }
    },
  );
});
