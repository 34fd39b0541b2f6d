/**
 * raw: onnxruntime-node in this process on inputs that are already tensors — the machine's limit
 * for the model. Tries batch sizes × thread settings (one session with 1 or 2 intra-op threads
 * on the main thread, or 2 worker_threads with one single-threaded session each) and reports the
 * best. A "job" is one row.
 *
 * iris: rows of the Iris data set stacked into [b, 4].
 * ocr-text-line: the session.run cost only, on input already decoded, resized to height 48,
 * normalised and padded by the adapter (prepare + collate, done once up front), cycling the
 * bench's 8 rendered lines. Also reported, for reference: `withAdapter`, the same batch through
 * LoadedModel.run (decode + preprocess + run + decode) — what a worker must do per job.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { ModelRepository, type ResolvedModel } from "@inferline/runtime";
import { LoadedModel } from "@inferline/inference";

/** Worker threads do not inherit tsx's loader: the thread registers it, then loads this file. */
const THREAD_BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); });`;

interface Feed {
  data: Float32Array;
  dims: number[];
  rows: number;
}

interface ThreadTask {
  file: string;
  inputName: string;
  feeds: Feed[];
  seconds: number;
}

async function session(file: string, intra: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, {
    intraOpNumThreads: intra,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    logSeverityLevel: 4,
  });
}

/** Runs the feeds round-robin for `seconds` (after one warm-up pass); returns rows and seconds. */
async function loop(
  s: ort.InferenceSession,
  inputName: string,
  feeds: Feed[],
  seconds: number,
): Promise<{ rows: number; seconds: number; runs: number }> {
  const tensors = feeds.map((f) => ({ t: new ort.Tensor("float32", f.data, f.dims), rows: f.rows }));
  for (const t of tensors) await s.run({ [inputName]: t.t });
  let rows = 0;
  let runs = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (performance.now() < until) {
    const t = tensors[runs % tensors.length]!;
    await s.run({ [inputName]: t.t });
    rows += t.rows;
    runs++;
  }
  return { rows, runs, seconds: (performance.now() - t0) / 1000 };
}

if (!isMainThread) {
  const task = workerData as ThreadTask;
  const s = await session(task.file, 1);
  // A failed run rejects unhandled on purpose: it ends the thread.
  parentPort!.once("message", () => {
    void (async () => {
      parentPort!.postMessage(await loop(s, task.inputName, task.feeds, task.seconds));
      await s.release();
    })();
  });
  parentPort!.postMessage("ready");
} else {
  const { env, emit, log, round, irisRows, ocrLines, ocrInputs, machine } = await import("./_shared.ts");

  const repo = ModelRepository.load(DEFAULT_MODELS_DIR);
  const model = repo.resolve(env.model);
  const file = await onnxFile(model);
  const seconds = Number(process.env.BENCH_RAW_SECONDS ?? (env.model === "iris" ? 0.6 : 2.5));
  const batchSizes = (process.env.BENCH_RAW_BATCHES ?? (env.model === "iris" ? "1,16,64,256,1024" : "1,2,4,8"))
    .split(",")
    .map(Number);

  // Feeds per batch size: a few distinct batches cycled, so no single input is favoured.
  let inputName: string;
  let feedsFor: (b: number) => Feed[];
  let itemsFor: (b: number) => {
    inputs: ReturnType<typeof ocrInputs> | Array<{ name: string; shape: number[]; datatype: "FP32"; data: number[] }>;
  }[];
  if (env.model === "iris") {
    inputName = "features";
    const rows = irisRows();
    feedsFor = (b) =>
      [0, 1, 2, 3].map((k) => {
        const data = new Float32Array(b * 4);
        for (let i = 0; i < b; i++) data.set(rows[(k * b + i) % rows.length]!, i * 4);
        return { data, dims: [b, 4], rows: b };
      });
    itemsFor = (b) =>
      Array.from({ length: b }, (_, i) => ({
        inputs: [{ name: "features", shape: [1, 4], datatype: "FP32" as const, data: rows[i % rows.length]! }],
      }));
  } else {
    const { ocrTextLineAdapter, OCR_INPUT } = await import("@inferline/inference/ocr-text-line");
    inputName = OCR_INPUT;
    const adapter = ocrTextLineAdapter(model.manifest, model.dir);
    const lines = await ocrLines();
    // prepare() may answer at once or with a promise (see ModelAdapter).
    const prepared = await Promise.all(lines.map(async (l) => adapter.prepare({ inputs: ocrInputs(l.png) })));
    feedsFor = (b) =>
      Array.from({ length: lines.length }, (_, k) => {
        const t = adapter.collate(Array.from({ length: b }, (_, i) => prepared[(k * b + i) % prepared.length]!))[
          OCR_INPUT
        ]!;
        return { data: t.data as Float32Array, dims: [...t.dims], rows: b };
      });
    itemsFor = (b) => Array.from({ length: b }, (_, i) => ({ inputs: ocrInputs(lines[i % lines.length]!.png) }));
  }

  const configs: Array<{ mode: string; batch: number; rowsPerSecond: number; runs: number }> = [];
  for (const intra of [1, 2]) {
    const s = await session(file, intra);
    for (const b of batchSizes) {
      const r = await loop(s, inputName, feedsFor(b), seconds);
      configs.push({
        mode: `1 session, intraOp ${intra}`,
        batch: b,
        rowsPerSecond: round(r.rows / r.seconds, 0),
        runs: r.runs,
      });
      log(`intraOp ${intra} batch ${b}: ${round(r.rows / r.seconds, 0)} rows/s (${r.runs} runs)`);
    }
    await s.release();
  }
  for (const b of batchSizes) {
    const r = await inThreads(2, { file, inputName, feeds: feedsFor(b), seconds });
    configs.push({
      mode: "2 worker_threads × intraOp 1",
      batch: b,
      rowsPerSecond: round(r.rows / r.seconds, 0),
      runs: r.runs,
    });
    log(`2 threads batch ${b}: ${round(r.rows / r.seconds, 0)} rows/s`);
  }
  const best = configs.reduce((a, c) => (c.rowsPerSecond > a.rowsPerSecond ? c : a));

  // The same best batch (inline, best intra) through Inferline's adapter path, for reference.
  let withAdapter: { batch: number; intraOp: number; rowsPerSecond: number } | undefined;
  try {
    const intra = best.mode.includes("intraOp 2") ? 2 : 1;
    const loaded = await LoadedModel.load(model, { intraOpThreads: intra });
    const items = itemsFor(best.batch);
    await loaded.run(items);
    let rows = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await loaded.run(items);
      rows += items.length;
    }
    withAdapter = {
      batch: best.batch,
      intraOp: intra,
      rowsPerSecond: round(rows / ((performance.now() - t0) / 1000), 0),
    };
    log(`LoadedModel.run batch ${best.batch} intraOp ${intra}: ${withAdapter.rowsPerSecond} rows/s`);
    await loaded.release();
  } catch (err) {
    log(`LoadedModel path unavailable: ${(err as Error).message}`);
  }

  emit({
    scenario: "raw",
    model: env.model,
    jobsPerSecond: best.rowsPerSecond,
    best: { mode: best.mode, batch: best.batch },
    what:
      env.model === "iris"
        ? "session.run on prebuilt [b,4] FP32 tensors"
        : "session.run on already-preprocessed [b,3,48,W] tensors (adapter prepare+collate done up front)",
    configs,
    withAdapter,
    machine: machine(),
  });

  async function inThreads(n: number, task: ThreadTask): Promise<{ rows: number; seconds: number; runs: number }> {
    const workers = Array.from({ length: n }, () => new Worker(THREAD_BOOT, { eval: true, workerData: task }));
    await Promise.all(workers.map((w) => new Promise((r) => w.once("message", r))));
    const results = await Promise.all(
      workers.map((w) => {
        const p = new Promise<{ rows: number; seconds: number; runs: number }>((r) => w.once("message", r));
        w.postMessage("go");
        return p;
      }),
    );
    await Promise.all(workers.map((w) => w.terminate()));
    return {
      rows: results.reduce((a, r) => a + r.rows, 0),
      runs: results.reduce((a, r) => a + r.runs, 0),
      seconds: Math.max(...results.map((r) => r.seconds)),
    };
  }
}

/** The ONNX file: in the model's folder, or inside its npm package (found by walking node_modules). */
async function onnxFile(model: ResolvedModel): Promise<string> {
  if (model.spec.file) return `${model.dir}/${model.spec.file}`;
  const { packageRoot } = await import("@inferline/inference/ocr-text-line");
  return `${packageRoot(model.spec.package!.name, model.dir)}/${model.spec.package!.path}`;
}
