import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestModelRepository } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { runScore } from "./support/score-cli.ts";

// `inferline score --remote` packs consecutive CSV rows into one batch item (--rows-per-item,
// default 32, capped by the model's maxRowsPerJob). A row the model rejects fails its whole item
// on the cluster; the CLI then runs that item's rows again one an item, so only that row fails,
// as in local scoring. `lookup` fails inside onnxruntime for an index outside its 3-row table.

let dir: string;
let models: { dir: string; remove(): void };
let cluster: TestCluster;
let key: string;
let tenantId: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-remote-rows-"));
  models = createTestModelRepository();
  // iris here takes at most 5 rows a job, to show the cap; lookup's one input is a CSV column.
  editManifest("iris", (m) => ({ ...m, maxRowsPerJob: 5 }));
  editManifest("lookup", (m) => ({ ...m, inputs: (m.inputs as object[]).map((i) => ({ ...i, features: ["index"] })) }));
  cluster = await startCluster({ modelsDir: models.dir, workerModels: "lookup,iris" });
  ({ key, tenantId } = await cluster.createKey("scorer"));
});

afterAll(async () => {
  await cluster?.close();
  models?.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

function editManifest(model: string, edit: (manifest: Record<string, unknown>) => Record<string, unknown>): void {
  const file = path.join(models.dir, model, "model.json");
  fs.writeFileSync(file, JSON.stringify(edit(JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>)));
}

const cli = (args: string[]) => runScore(args, { MODELS_DIR: models.dir });

/** The rows of each item of the tenant's batches created since `since` (batch by batch, in order). */
async function itemRows(since: Date): Promise<number[][]> {
  const { rows } = await cluster.admin.pool.query<{ rows: number[] }>(
    `select array_agg((item -> 0 -> 'shape' ->> 0)::int order by c."firstIndex", n) as rows
     from batches b join batch_chunks c on c."batchId" = b.id, json_array_elements(c.inputs) with ordinality as x(item, n)
     where b."tenantId" = $1 and b."createdAt" >= $2 group by b.id, b."createdAt" order by b."createdAt", b.id`,
    [tenantId, since],
  );
  return rows.map((r) => r.rows);
}

function writeLookupCsv(file: string, rows: number, bad: number): void {
  let s = "id,index\n";
  for (let i = 0; i < rows; i++) s += `r${i},${i === bad ? 7 : i % 3}\n`;
  fs.writeFileSync(file, s);
}

describe("score --remote --rows-per-item", () => {
  it("sends 32 rows an item, and a row the model rejects fails alone: output identical to local scoring", async () => {
    const input = path.join(dir, "lookup.csv");
    writeLookupCsv(input, 100, 40);
    const local = path.join(dir, "local.jsonl");
    const remote = path.join(dir, "remote.jsonl");
    const common = [input, "--model", "lookup", "--progress", "off"];
    const since = new Date();
    const l = await cli([...common, "--out", local]);
    const r = await cli([...common, "--out", remote, "--remote", cluster.api.url, "--api-key", key]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect([l.code, r.code], l.stderr + r.stderr).toEqual([1, 1]);
    expect(fs.readFileSync(remote, "utf8")).toBe(fs.readFileSync(local, "utf8"));
    expect(fs.readFileSync(remote, "utf8").split("\n").filter(Boolean)).toHaveLength(99);
    // Line 42 holds row r40 (the header is line 1): the only error, in both modes.
    const errors = fs
      .readFileSync(`${remote}.errors.jsonl`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { line: number; id: string; error: string });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 42, id: "r40" });
    expect(errors[0]!.error).toMatch(/^inference_error: /);
    // The batch as sent (items of 32, 32, 32 and 4 rows), then the failed item's 32 rows one each.
    expect(await itemRows(since)).toEqual([[32, 32, 32, 4], new Array<number>(32).fill(1)]);
  }, 60_000);

  it("sends one row an item with --rows-per-item 1, and at most the model's maxRowsPerJob", async () => {
    const input = path.join(dir, "iris.csv");
    let s = "sepal_length,sepal_width,petal_length,petal_width\n";
    for (let i = 0; i < 12; i++) s += `${4 + i / 10},3.1,${1 + i / 5},0.${(i % 9) + 1}\n`;
    fs.writeFileSync(input, s);
    const common = [input, "--model", "iris", "--progress", "off", "--remote", cluster.api.url, "--api-key", key];

    let since = new Date();
    expect((await cli([...common, "--out", path.join(dir, "one.jsonl"), "--rows-per-item", "1"])).code).toBe(0);
    expect(await itemRows(since)).toEqual([new Array<number>(12).fill(1)]);

    since = new Date();
    expect((await cli([...common, "--out", path.join(dir, "capped.jsonl")])).code).toBe(0);
    expect(await itemRows(since)).toEqual([[5, 5, 2]]);
    // Grouping does not change what is written.
    expect(fs.readFileSync(path.join(dir, "capped.jsonl"), "utf8")).toBe(
      fs.readFileSync(path.join(dir, "one.jsonl"), "utf8"),
    );
  }, 60_000);
});
