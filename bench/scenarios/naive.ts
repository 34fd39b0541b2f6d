/**
 * naive: what a user writes without Inferline. Jobs are rows in the same `jobs` table; each has
 * its own BullMQ entry carrying its inputs (so the worker needs no SELECT — the kindest version
 * of naive); a BullMQ Worker with the real worker's concurrency (8) runs one session.run per job
 * and one `UPDATE jobs SET status, result, completedAt WHERE id = $1` per job through pg.
 *
 * iris: onnxruntime-node directly ([1,4] tensor in, probabilities out).
 * ocr-text-line: the model's adapter functions for one item (decode PNG + resize + normalise,
 * session.run, CTC decode) — a user would have to write that preprocessing too.
 */
import crypto from "node:crypto";
import { Queue, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import * as ort from "onnxruntime-node";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { ModelRepository } from "@inferline/runtime";
import { JobStore, type NewJob } from "@inferline/db";
import {
  emit,
  env,
  inputMaker,
  int,
  log,
  meter,
  pool,
  prefixFor,
  resetJobs,
  round,
  tenantId,
  VERSION,
} from "./_shared.ts";

const N = env.n;
const concurrency = int("BENCH_NAIVE_CONCURRENCY", 8);
const intra = int("BENCH_NAIVE_INTRA", env.model === "iris" ? 1 : 2);
const prefix = prefixFor("naive");
const p = pool(concurrency + 1);
await resetJobs(p);
const admin = new Redis(env.redisUrl);
const connection = new Redis(env.redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue("naive", { connection, prefix });

const model = ModelRepository.load(DEFAULT_MODELS_DIR).resolve(env.model);
type Inputs = Awaited<ReturnType<typeof inputMaker>> extends (i: number) => infer R ? R : never;
let infer: (inputs: Inputs) => Promise<unknown>;
if (env.model === "iris") {
  const session = await ort.InferenceSession.create(`${model.dir}/${model.spec.file}`, {
    intraOpNumThreads: intra,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
  infer = async (inputs) => {
    const out = await session.run({
      features: new ort.Tensor("float32", Float32Array.from(inputs[0]!.data as number[]), [1, 4]),
    });
    return { probabilities: Array.from(out.probabilities!.data as Float32Array) };
  };
} else {
  const { ocrTextLineAdapter, packageRoot } = await import("@inferline/inference/ocr-text-line");
  const adapter = ocrTextLineAdapter(model.manifest, model.dir);
  const session = await ort.InferenceSession.create(
    `${packageRoot(model.spec.package!.name, model.dir)}/${model.spec.package!.path}`,
    {
      intraOpNumThreads: intra,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    },
  );
  infer = async (inputs) => {
    const prepared = await adapter.prepare({ inputs });
    const out = await session.run(adapter.collate([prepared]));
    return adapter.split(out, [prepared])[0]!.decoded;
  };
}

const make = await inputMaker();
const tenant = await tenantId(p);
const jobs: NewJob[] = Array.from({ length: N }, (_, i) => ({
  id: crypto.randomUUID(),
  tenantId: tenant,
  model: env.model,
  version: VERSION[env.model],
  priority: "normal",
  inputs: make(i),
  requestedOutputs: [],
  metadata: {},
  webhook: null,
  idempotencyKey: null,
  requestHash: null,
  dispatchId: null,
  queueDeadline: null,
  cancelAt: null,
  createdAt: new Date(),
}));
await new JobStore(p, undefined as never).insertMany(jobs);
for (let i = 0; i < N; i += 5000) {
  await queue.addBulk(
    jobs.slice(i, i + 5000).map((j) => ({
      name: "infer",
      data: { id: j.id, inputs: j.inputs },
      opts: { attempts: 5, removeOnComplete: true, jobId: j.id },
    })),
  );
}
log(`${N} jobs stored and queued; draining with concurrency ${concurrency}, intraOp ${intra}`);

let done = 0;
let failed = 0;
let finish: (at: number) => void = () => {};
const finished = new Promise<number>((r) => (finish = r));
const m = await meter(p, admin);
const worker = new Worker(
  "naive",
  async (job: Job<{ id: string; inputs: Inputs }>) => {
    try {
      const result = await infer(job.data.inputs);
      await p.query(
        `update jobs set status = 'succeeded', result = $2::json, attempts = 1, "startedAt" = now(), "completedAt" = now() where id = $1`,
        [job.data.id, JSON.stringify(result)],
      );
    } catch (err) {
      failed++;
      await p.query(`update jobs set status = 'failed', "errorMessage" = $2, "completedAt" = now() where id = $1`, [
        job.data.id,
        (err as Error).message,
      ]);
    }
    if (++done === N) queueMicrotask(() => finish(performance.now()));
  },
  { connection: new Redis(env.redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency, lockDuration: 30_000 },
);
worker.on("error", () => {});
const endedAt = await finished;
const usage = await m.stop(N, endedAt);
const jobsPerSecond = round(N / usage.seconds, 0);
const { rows } = await p.query<{ n: number }>(`select count(*)::int as n from jobs where status = 'succeeded'`);
const succeeded = rows[0]!.n;
log(`${N} jobs in ${usage.seconds} s = ${jobsPerSecond} jobs/s (${succeeded} succeeded, ${failed} failed)`);
await worker.close();
await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
connection.disconnect();
admin.disconnect();
await resetJobs(p);
await p.end();
emit({
  scenario: "naive",
  model: env.model,
  n: N,
  jobsPerSecond,
  succeeded,
  concurrency,
  intraOpThreads: intra,
  statementsPerJob: "1 UPDATE (result) per job, plus BullMQ's own Redis commands",
  usage,
});
