import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleepUntil } from "@inferline/testing";
import { startCluster, type TestCluster } from "./support/cluster.ts";
import { runScore } from "./support/score-cli.ts";

// `inferline score --remote` re-scoring a file: its batches are answered per item from the result
// cache (iris's manifest sets `cache`), so a second run needs no worker; `--no-cache` runs every row;
// `--cache off` runs every row and stores nothing.

let dir: string;
let cluster: TestCluster;
let key: string;
let tenantId: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-remote-cache-"));
  cluster = await startCluster();
  ({ key, tenantId } = await cluster.createKey("rescorer"));
});

afterAll(async () => {
  await cluster?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runScore(args);

/** The tenant's batches in creation order, with how many of their items were answered from the cache. */
async function batches(): Promise<Array<{ id: string; status: string; total: number; cached: number }>> {
  const { rows } = await cluster.admin.pool.query<{ id: string; status: string; total: number; cached: number }>(
    `select b.id, case when b."completedAt" is null then 'open' else 'completed' end as status, b.total,
       (select count(*)::int from batch_chunks c, unnest(c.cached) as x(hit) where c."batchId" = b.id and x.hit) as cached
     from batches b where b."tenantId" = $1 order by b."createdAt", b.id`,
    [tenantId],
  );
  return rows;
}

async function cacheWrites(): Promise<number> {
  const m = (await cluster.worker!.metrics.registry.metrics()).match(
    /^inferline_cache_writes_total\{model="iris",outcome="stored"\} (\d+)/m,
  );
  return m ? Number(m[1]) : 0;
}

/** Rows `from` to `from + rows - 1`: distinct (the first column alone differs on every row), so no row hits another's entry. */
type Worker = Awaited<ReturnType<TestCluster["startWorker"]>>;
const runsOf = async (w: Worker) => (await w.metrics.itemsFinished.get()).values.reduce((n, v) => n + v.value, 0);

/** A batch reads completed at its commit; the worker counts its run items a moment after it. */
async function expectRuns(w: Worker, n: number): Promise<void> {
  await sleepUntil(async () => (await runsOf(w)) >= n, { timeoutMs: 10_000, message: `${n} runs never counted` });
  expect(await runsOf(w)).toBe(n);
}

function writeCsv(file: string, rows: number, from = 0): void {
  let s = "id,sepal_length,sepal_width,petal_length,petal_width\n";
  for (let i = from; i < from + rows; i++)
    s += `r${i},${4 + i / 1000},${2 + ((i * 3) % 25) / 10},${1 + ((i * 11) % 60) / 10},${0.1 + ((i * 5) % 24) / 10}\n`;
  fs.writeFileSync(file, s);
}

describe("score --remote and the result cache", () => {
  it("re-scoring a file needs no worker: every item is cached and the output is byte-identical", async () => {
    const input = path.join(dir, "rows.csv");
    writeCsv(input, 3000);
    const first = path.join(dir, "first.jsonl");
    const second = path.join(dir, "second.jsonl");
    const flags = [
      input,
      "--model",
      "iris",
      "--progress",
      "off",
      "--chunk-size",
      "16384",
      "--remote",
      cluster.api.url,
      "--api-key",
      key,
      "--concurrency",
      "3",
    ];

    expect((await cli([...flags, "--out", first])).code).toBe(0);
    const firstBatches = await batches();
    expect(firstBatches.length).toBeGreaterThan(1);
    expect(firstBatches.every((b) => b.cached === 0)).toBe(true);
    // An item (a job, one cache entry) carries up to 32 rows (--rows-per-item).
    const items = firstBatches.reduce((n, b) => n + b.total, 0);
    expect(items).toBeGreaterThanOrEqual(3000 / 32);
    expect(items).toBeLessThan(3000);
    // The worker stores results after each chunk's commit: every item's is in before the re-run.
    await sleepUntil(async () => (await cacheWrites()) >= items, {
      timeoutMs: 10_000,
      message: "results never stored",
    });

    // No worker at all now: a batch item that needed a run would never finish.
    await cluster.worker!.close();
    cluster.worker = undefined;
    const rerun = await cli([...flags, "--out", second]);
    expect(rerun.stderr).not.toMatch(/\n\s+at /);
    expect(rerun.code).toBe(0);
    // The CLI writes results without `cached`: the file is what the first run wrote.
    expect(fs.readFileSync(second).equals(fs.readFileSync(first))).toBe(true);
    const rerunBatches = (await batches()).slice(firstBatches.length);
    expect(rerunBatches.length).toBe(firstBatches.length);
    expect(rerunBatches.every((b) => b.status === "completed" && b.cached === b.total)).toBe(true);
    expect(rerunBatches.reduce((n, b) => n + b.total, 0)).toBe(items);

    // --no-cache sends cache: "bypass": with a worker back, every row runs again, nothing is marked cached.
    const worker = await cluster.startWorker();
    const third = path.join(dir, "third.jsonl");
    const before = (await batches()).length;
    expect((await cli([...flags, "--out", third, "--no-cache"])).code).toBe(0);
    expect(fs.readFileSync(third).equals(fs.readFileSync(first))).toBe(true);
    expect((await batches()).slice(before).every((b) => b.cached === 0)).toBe(true);
    await expectRuns(worker, items);
  }, 90_000);

  it("--cache off runs every row and stores none of them: the file's next run runs them all again", async () => {
    const input = path.join(dir, "fresh.csv");
    writeCsv(input, 1000, 5000);
    const flags = [
      input,
      "--model",
      "iris",
      "--progress",
      "off",
      "--chunk-size",
      "16384",
      "--remote",
      cluster.api.url,
      "--api-key",
      key,
    ];
    const worker = cluster.worker ?? (await cluster.startWorker());
    const [writes, runs, before] = [await cacheWrites(), await runsOf(worker), (await batches()).length];

    expect((await cli([...flags, "--out", path.join(dir, "off.jsonl"), "--cache", "off"])).code).toBe(0);
    const items = (await batches()).slice(before).reduce((n, b) => n + b.total, 0);
    await expectRuns(worker, runs + items);
    expect((await cli([...flags, "--out", path.join(dir, "after-off.jsonl")])).code).toBe(0);
    // Nothing of the first run was there to answer the second: it ran every item too, and stored them.
    await expectRuns(worker, runs + 2 * items);
    expect((await batches()).slice(before).every((b) => b.cached === 0)).toBe(true);
    await sleepUntil(async () => (await cacheWrites()) - writes >= items, {
      timeoutMs: 10_000,
      message: "the second run's results were never stored",
    });
    expect((await cacheWrites()) - writes).toBe(items);
  }, 90_000);
});
