import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestModelRepository } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { runScore } from "./support/score-cli.ts";

// `inferline score --remote` when the cluster's items expire: the API gives every batch a
// queue deadline of 1 s (DEFAULT_MAX_QUEUE_SECONDS) and no worker serves iris, so the deadline
// sweep of a worker serving another model expires them. Each row goes to the errors file with
// its item's error, as a failed row does, and the run exits 1.

let dir: string;
let models: { dir: string; remove(): void };
let cluster: TestCluster;
let key: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-remote-deadlines-"));
  models = createTestModelRepository();
  cluster = await startCluster({
    modelsDir: models.dir,
    workerModels: "lookup",
    api: { DEFAULT_MAX_QUEUE_SECONDS: "1" },
    worker: { DEADLINE_SWEEP_INTERVAL_MS: "100" },
  });
  ({ key } = await cluster.createKey("scorer"));
});

afterAll(async () => {
  await cluster?.close();
  models?.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runScore(args);

describe("score --remote with items that expire", () => {
  it("writes each expired row to the errors file with deadline_exceeded, and exits 1", async () => {
    const input = path.join(dir, "rows.csv");
    fs.writeFileSync(
      input,
      "id,sepal_length,sepal_width,petal_length,petal_width\nr0,5.1,3.5,1.4,0.2\nr1,7.0,3.2,4.7,1.4\nr2,6.3,3.3,6.0,2.5\n",
    );
    const out = path.join(dir, "rows.jsonl");
    const run = await cli([
      input,
      "--model",
      "iris",
      "--out",
      out,
      "--remote",
      cluster.api.url,
      "--api-key",
      key,
      "--progress",
      "off",
    ]);
    expect(run.code, run.stderr).toBe(1);
    expect(fs.readFileSync(out, "utf8")).toBe("");
    const errors = fs
      .readFileSync(`${out}.errors.jsonl`, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { line: number; id?: string; error: string });
    expect(errors.map((e) => [e.line, e.id])).toEqual([
      [2, "r0"],
      [3, "r1"],
      [4, "r2"],
    ]);
    for (const e of errors) expect(e.error).toMatch(/^deadline_exceeded: not started within its queue deadline of 1 s/);
  }, 60_000);
});
