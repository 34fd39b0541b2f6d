import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleepUntil } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { runScore } from "./support/score-cli.ts";

// `inferline score --remote` against a real API and worker (in this process), compared byte for
// byte with local scoring of the same file.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");

let dir: string;
let cluster: TestCluster;
let key: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-remote-"));
  cluster = await startCluster();
  ({ key } = await cluster.createKey("scorer"));
});

afterAll(async () => {
  await cluster?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runScore(args);

/** The tenant's batches: how many, and how many rows their items hold in all (an item carries up to --rows-per-item rows). */
async function batchesOf(tenantId: string): Promise<{ batches: number; rows: number }> {
  const { rows } = await cluster.admin.pool.query<{ batches: number; rows: number }>(
    `select count(distinct b.id)::int as batches, coalesce(sum((item -> 0 -> 'shape' ->> 0)::int), 0)::int as rows
     from batches b left join batch_chunks c on c."batchId" = b.id left join lateral json_array_elements(c.inputs) as item on true
     where b."tenantId" = $1`,
    [tenantId],
  );
  return rows[0]!;
}

function writeCsv(file: string, rows: number): void {
  let s = "id,sepal_length,sepal_width,petal_length,petal_width\n";
  for (let i = 0; i < rows; i++) {
    const bad = i === 17 ? "oops" : String(4 + ((i * 7) % 40) / 10);
    s += `r${i},${bad},${2 + ((i * 3) % 25) / 10},${1 + ((i * 11) % 60) / 10},${0.1 + ((i * 5) % 24) / 10}\n`;
  }
  fs.writeFileSync(file, s);
}

describe("score --remote", () => {
  it.each(["jsonl", "csv"])(
    "writes %s output identical to local scoring, with the same errors file and exit code",
    async (format) => {
      const input = path.join(dir, `in-${format}.csv`);
      writeCsv(input, 3000);
      const local = path.join(dir, `local.${format}`);
      const remote = path.join(dir, `remote.${format}`);
      const common = [input, "--model", "iris", "--format", format, "--progress", "off", "--chunk-size", "16384"];
      const l = await cli([...common, "--out", local]);
      const r = await cli([
        ...common,
        "--out",
        remote,
        "--remote",
        cluster.api.url,
        "--api-key",
        key,
        "--concurrency",
        "3",
      ]);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect([l.code, r.code]).toEqual([1, 1]); // row 17 is not a number
      expect(fs.readFileSync(remote, "utf8")).toBe(fs.readFileSync(local, "utf8"));
      expect(fs.readFileSync(`${remote}.errors.jsonl`, "utf8")).toBe(fs.readFileSync(`${local}.errors.jsonl`, "utf8"));
      expect(fs.readFileSync(remote, "utf8").split("\n").filter(Boolean)).toHaveLength(format === "csv" ? 3000 : 2999);
    },
    60_000,
  );

  it("resumes after kill -9 without creating any batch twice: output identical to local scoring", async () => {
    const input = path.join(dir, "resume.csv");
    writeCsv(input, 100_000);
    const local = path.join(dir, "resume-local.jsonl");
    const out = path.join(dir, "resume-remote.jsonl");
    const tenantKey = await cluster.createKey("resumer");
    const flags = [
      input,
      "--model",
      "iris",
      "--progress",
      "off",
      "--chunk-size",
      "32768",
      "--checkpoint-interval",
      "50",
    ];
    expect((await cli([...flags, "--out", local])).code).toBe(1);

    const remote = [
      ...flags,
      "--out",
      out,
      "--remote",
      cluster.api.url,
      "--api-key",
      tenantKey.key,
      "--concurrency",
      "4",
    ];
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "score", ...remote], {
      cwd: ROOT,
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("close", resolve));
    await sleepUntil(
      () => {
        try {
          return (JSON.parse(fs.readFileSync(`${out}.checkpoint.json`, "utf8")) as { rows: number }).rows > 0;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, message: "no checkpoint with scored rows" },
    );
    child.kill("SIGKILL");
    await exited;
    const beforeResume = await batchesOf(tenantKey.tenantId);
    expect(beforeResume.rows).toBeLessThan(99_999); // killed before every batch was created

    const resumed = await cli([...remote, "--resume"]);
    expect(resumed.code).toBe(1);
    expect(fs.readFileSync(out).equals(fs.readFileSync(local))).toBe(true);
    // Batches in flight at the kill were fetched again under their keys, not created again:
    // every valid row was submitted exactly once.
    expect(await batchesOf(tenantKey.tenantId)).toMatchObject({ rows: 99_999 });
  }, 90_000);

  it("a wrong key exits 4, an unreachable cluster 3, each with one clear line", async () => {
    const input = path.join(dir, "small.csv");
    writeCsv(input, 5);
    const badKey = await cli([
      input,
      "--model",
      "iris",
      "--out",
      path.join(dir, "x.jsonl"),
      "--remote",
      cluster.api.url,
      "--api-key",
      "il_wrong",
      "--progress",
      "off",
    ]);
    expect(badKey.code).toBe(4);
    expect(badKey.stderr).toContain("refused the API key");
    const down = await cli([
      input,
      "--model",
      "iris",
      "--out",
      path.join(dir, "y.jsonl"),
      "--remote",
      "http://127.0.0.1:1",
      "--api-key",
      key,
      "--progress",
      "off",
    ]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("cannot reach http://127.0.0.1:1");
  });
});
