import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestModelRepository, freePort, IRIS_SAMPLES } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { CLI_MAIN, ROOT } from "./support/score-cli.ts";

// `inferline jobs …` and `inferline batches …` against a live API and worker: tables and --json,
// paging, waiting, and the exit code of each way a command can end.

const run = promisify(execFile);

let cluster: TestCluster;
let models: { dir: string; remove(): void };
let dir: string;
beforeAll(async () => {
  models = createTestModelRepository();
  cluster = await startCluster({ modelsDir: models.dir, workerModels: "iris,lookup" });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-remote-commands-"));
});
afterAll(async () => {
  await cluster?.close();
  models?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a tenant of its own (INFERLINE_URL and INFERLINE_API_KEY from the environment, as a user would set them). */
function tenantCli(key: string, url = cluster.api.url) {
  return async (...args: string[]): Promise<Run> => {
    const env = { ...process.env, INFERLINE_URL: url, INFERLINE_API_KEY: key };
    try {
      const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", CLI_MAIN, ...args], {
        cwd: ROOT,
        env,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      return err as Run;
    }
  };
}

const iris = (row: readonly number[]) =>
  JSON.stringify([{ name: "features", datatype: "FP32", shape: [1, 4], data: row }]);
const json = <T = any>(r: Run): T => JSON.parse(r.stdout) as T;
const tableRows = (r: Run) => r.stdout.trimEnd().split("\n");

describe("inferline jobs", () => {
  it("submits, waits and prints the job as a table or JSON; gets, lists by page and cancels", async () => {
    const cli = tenantCli((await cluster.createKey("cli-jobs")).key);
    const done = await cli(
      "jobs",
      "submit",
      "--model",
      "iris",
      "--inputs",
      iris(IRIS_SAMPLES.virginica),
      "--cache",
      "bypass",
      "--metadata",
      "run=cli",
      "--wait",
      "--json",
    );
    expect(done.code, done.stderr).toBe(0);
    const job = json(done);
    expect(job).toMatchObject({
      status: "succeeded",
      metadata: { run: "cli" },
      result: { classifications: [{ label: "virginica" }] },
    });

    const shown = await cli("jobs", "get", job.id);
    expect(shown.code).toBe(0);
    const [header, row] = tableRows(shown);
    expect(header!.split(/\s{2,}/)).toEqual(["ID", "STATUS", "MODEL", "VERSION", "CREATED", "COMPLETED", "RESULT"]);
    expect(row!.split(/\s{2,}/)).toEqual([
      job.id,
      "succeeded",
      "iris",
      "1",
      job.createdAt,
      job.completedAt,
      "virginica",
    ]);

    const file = path.join(dir, "request.json");
    fs.writeFileSync(file, JSON.stringify({ inputs: JSON.parse(iris(IRIS_SAMPLES.setosa)) }));
    for (let i = 0; i < 2; i++)
      expect((await cli("jobs", "submit", "--model", "iris", "--inputs-file", file)).code).toBe(0);
    const first = await cli("jobs", "list", "--limit", "2", "--json");
    expect(json<unknown[]>(first)).toHaveLength(2);
    const cursor = /^more: inferline jobs list --cursor (\S+)$/m.exec(first.stderr)?.[1];
    expect(cursor, first.stderr).toBeDefined();
    const rest = await cli("jobs", "list", "--cursor", cursor!, "--json");
    expect(json<Array<{ id: string }>>(rest).map((j) => j.id)).toEqual([job.id]);
    expect(rest.stderr).toBe("");

    await cluster.worker!.close();
    cluster.worker = undefined;
    try {
      const queued = json(
        await cli(
          "jobs",
          "submit",
          "--model",
          "iris",
          "--inputs",
          iris(IRIS_SAMPLES.setosa),
          "--cache",
          "bypass",
          "--json",
        ),
      );
      expect(await cli("jobs", "get", queued.id, "--wait", "1")).toMatchObject({ code: 124 });
      const canceled = await cli("jobs", "cancel", queued.id, "--json");
      expect(json(canceled)).toMatchObject({ id: queued.id, status: "canceled" });
      expect(await cli("jobs", "get", queued.id, "--wait")).toMatchObject({ code: 1 });
    } finally {
      await cluster.startWorker();
    }
  });

  it("exits 1 when a waited-for job fails, 2 for a refused request or an unknown job, 4 for a wrong key, 3 when the API is out of reach", async () => {
    const key = (await cluster.createKey("cli-exits")).key;
    const cli = tenantCli(key);
    const failed = await cli(
      "jobs",
      "submit",
      "--model",
      "lookup",
      "--inputs",
      JSON.stringify([{ name: "index", datatype: "INT64", shape: [1, 1], data: [99] }]),
      "--wait",
      "30",
    );
    expect(failed.code, failed.stderr).toBe(1);
    expect(tableRows(failed)[1]).toMatch(/\sfailed\s/);

    const refused = await cli("jobs", "submit", "--model", "iris", "--inputs", "[]");
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^inferline: 422 validation_failed: .*\/inputs/),
    ]);
    expect(await cli("jobs", "get", "00000000-0000-4000-8000-000000000000")).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^inferline: 404 not_found/),
    });
    expect(await tenantCli("il_wrong")("jobs", "list")).toMatchObject({ code: 4 });
    const down = await tenantCli(key, `http://127.0.0.1:${await freePort()}`)("jobs", "list");
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("ECONNREFUSED");
  });
});

describe("inferline batches", () => {
  it("creates a batch from a JSONL file, waits, lists, gets and prints its results in order", async () => {
    const cli = tenantCli((await cluster.createKey("cli-batches")).key);
    const samples = [IRIS_SAMPLES.setosa, IRIS_SAMPLES.versicolor, IRIS_SAMPLES.virginica];
    const items = path.join(dir, "items.jsonl");
    fs.writeFileSync(
      items,
      samples.map((row, i) => JSON.stringify({ customId: `row-${i}`, inputs: JSON.parse(iris(row)) })).join("\n") +
        "\n",
    );

    const created = await cli(
      "batches",
      "create",
      items,
      "--model",
      "iris",
      "--cache",
      "bypass",
      "--wait",
      "30",
      "--json",
    );
    expect(created.code, created.stderr).toBe(0);
    const batch = json(created);
    expect(batch).toMatchObject({ status: "completed", total: 3, counts: { succeeded: 3 } });

    expect(json<Array<{ id: string }>>(await cli("batches", "list", "--json")).map((b) => b.id)).toEqual([batch.id]);
    expect(json(await cli("batches", "list", "--status", "running", "--json"))).toEqual([]);
    expect(json(await cli("batches", "get", batch.id, "--json"))).toEqual(batch);

    const lines = (await cli("batches", "results", batch.id, "--json")).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.index, l.customId, l.result.classifications[0].label])).toEqual([
      [0, "row-0", "setosa"],
      [1, "row-1", "versicolor"],
      [2, "row-2", "virginica"],
    ]);
    const table = tableRows(await cli("batches", "results", batch.id));
    expect(table.map((l) => l.split(/\s{2,}/)[4])).toEqual(["RESULT", "setosa", "versicolor", "virginica"]);
  });

  it("stops at a line that is not JSON (exit 2, naming it), and cancels a batch", async () => {
    const cli = tenantCli((await cluster.createKey("cli-batch-faults")).key);
    const broken = path.join(dir, "broken.jsonl");
    fs.writeFileSync(broken, `${JSON.stringify({ inputs: JSON.parse(iris(IRIS_SAMPLES.setosa)) })}\n{"inputs": [\n`);
    const refused = await cli("batches", "create", broken, "--model", "iris");
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(`inferline: ${broken} line 2 is not JSON: ${jsonError('{"inputs": [')}`);
    expect(json(await cli("batches", "list", "--json"))).toEqual([]);

    await cluster.worker!.close();
    cluster.worker = undefined;
    try {
      const items = path.join(dir, "one.jsonl");
      fs.writeFileSync(items, `${JSON.stringify({ inputs: JSON.parse(iris(IRIS_SAMPLES.setosa)) })}\n`);
      const batch = json(await cli("batches", "create", items, "--model", "iris", "--cache", "bypass", "--json"));
      expect(await cli("batches", "get", batch.id, "--wait", "1")).toMatchObject({ code: 124 });
      expect(json(await cli("batches", "cancel", batch.id, "--json"))).toMatchObject({
        id: batch.id,
        status: "canceled",
        counts: { canceled: 1 },
      });
      expect(await cli("batches", "get", batch.id, "--wait")).toMatchObject({ code: 1 });
    } finally {
      await cluster.startWorker();
    }
  });
});

/** The message JSON.parse gives for `text`. */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
    return "";
  } catch (err) {
    return (err as Error).message;
  }
}
