import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BroadcastChannel } from "node:worker_threads";
import onnxProto from "onnx-proto";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { ModelRepository, modelFilePath } from "@inferline/runtime";
import { writeEchoModels } from "./datatype-models.ts";

const { onnx } = onnxProto;

/** Rows of the `lookup` model's table: index i returns LOOKUP_TABLE[i]. */
export const LOOKUP_TABLE = [
  [0.5, 1.5],
  [2.5, 3.5],
  [4.5, 5.5],
];

/**
 * A Gather over a 3-row table: a real ONNX model that fails at run time (inside onnxruntime) for
 * an index outside the table, which the manifest cannot rule out. Tests use it for model errors
 * and for one bad item in a batch.
 */
function lookupModel(table: number[][] = LOOKUP_TABLE): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "lookup",
      input: [
        {
          name: "index",
          type: {
            tensorType: {
              elemType: onnx.TensorProto.DataType.INT64,
              shape: { dim: [{ dimParam: "batch" }, { dimValue: 1 }] },
            },
          },
        },
      ],
      output: [
        {
          name: "values",
          type: {
            tensorType: {
              elemType: onnx.TensorProto.DataType.FLOAT,
              shape: { dim: [{ dimParam: "batch" }, { dimValue: 1 }, { dimValue: 2 }] },
            },
          },
        },
      ],
      initializer: [
        { name: "table", dataType: onnx.TensorProto.DataType.FLOAT, dims: [table.length, 2], floatData: table.flat() },
      ],
      node: [
        {
          name: "gather",
          opType: "Gather",
          input: ["table", "index"],
          output: ["values"],
          attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
        },
      ],
    },
  });
  return Uint8Array.from(onnx.ModelProto.encode(model).finish());
}

/**
 * Absolute path of the test-only adapter module (`test-hang`, `test-crash`, `test-sleep`,
 * `test-kill-process`): set it as INFERENCE_ADAPTER_MODULES (or the `adapterModules` runner
 * setting) to serve the fault models of `createTestModelRepository({ faultModels: true })`.
 */
export const FIXTURE_ADAPTERS_MODULE = fileURLToPath(new URL("./fixture-adapters.ts", import.meta.url));

/** Must match FIXTURE_CHANNEL in fixture-adapters.ts. */
const FIXTURE_CHANNEL = "inferline-test-fixture-threads";

/**
 * Ends (process.exit(1)) every pool thread of this process that serves fault model `model`,
 * busy or idle: how a test kills an idle inference thread from outside.
 */
export function exitFixtureThreads(model: string): void {
  const channel = new BroadcastChannel(FIXTURE_CHANNEL);
  channel.postMessage({ exit: model });
  channel.close();
}

const LOOKUP_SPEC = {
  versions: [{ version: "1", file: "lookup.onnx" }],
  inputs: [{ name: "index", datatype: "INT64", shape: [-1, 1] }],
  outputs: [{ name: "values", datatype: "FP32", shape: [-1, 1, 2] }],
  batching: { maxBatchSize: 64, maxQueueDelayMs: 20 },
};

/**
 * Models on the lookup ONNX whose adapter (from FIXTURE_ADAPTERS_MODULE) misbehaves for an item
 * whose first index is 2, and otherwise answers as `lookup`. Without that module they fail to load
 * (unknown preprocess).
 */
const FAULT_MODELS = [
  {
    name: "hang",
    description: "test model: index 2 busy-loops its thread forever",
    instances: 1,
    timeoutMs: 500,
    preprocess: "test-hang",
  },
  {
    name: "crash",
    description: "test model: index 2 ends its thread (process.exit in a worker thread)",
    instances: 1,
    preprocess: "test-crash",
  },
  {
    name: "slow",
    description: "test model: index 2 takes about 1.5 s without blocking the event loop",
    instances: 0,
    preprocess: "test-sleep",
  },
  {
    name: "poison",
    description: "test model: index 2 SIGKILLs the process that runs it",
    instances: 0,
    preprocess: "test-kill-process",
  },
  {
    name: "costly",
    description: "test model: every row takes 20 ms, one after another, without blocking the event loop",
    instances: 0,
    preprocess: "test-cost",
  },
];

function writeLookupModel(dir: string, manifest: Record<string, unknown>): void {
  fs.mkdirSync(path.join(dir, manifest.name as string));
  fs.writeFileSync(path.join(dir, manifest.name as string, "lookup.onnx"), lookupModel());
  fs.writeFileSync(
    path.join(dir, manifest.name as string, "model.json"),
    JSON.stringify({ ...manifest, ...LOOKUP_SPEC }),
  );
}

/** Rows of `lookup-cached` version 2's table: version 1's times ten, so a result of one version is never the other's. */
export const LOOKUP_TABLE_V2 = LOOKUP_TABLE.map((row) => row.map((v) => v * 10));

/**
 * `lookup-cached`: the lookup model with a result cache and two versions (version 1 on
 * LOOKUP_TABLE, version 2 on LOOKUP_TABLE_V2), for tests of the cache across versions and of
 * model errors under single flight (an index out of range fails inside onnxruntime).
 */
function writeCachedLookupModel(dir: string): void {
  const folder = path.join(dir, "lookup-cached");
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, "lookup.onnx"), lookupModel());
  fs.writeFileSync(path.join(folder, "lookup-v2.onnx"), lookupModel(LOOKUP_TABLE_V2));
  const manifest = {
    ...LOOKUP_SPEC,
    name: "lookup-cached",
    description: "test model: lookup with a result cache, in two versions whose tables differ",
    versions: [
      { version: "1", file: "lookup.onnx" },
      { version: "2", file: "lookup-v2.onnx" },
    ],
    cache: { ttlSeconds: 3600 },
  };
  fs.writeFileSync(path.join(folder, "model.json"), JSON.stringify(manifest));
}

/**
 * `ocr-text-line` as shipped, but its version's ONNX file named by absolute path: its npm package
 * cannot be found from a temp folder.
 */
function writeOcrTextLine(dir: string): void {
  const shipped = ModelRepository.load(DEFAULT_MODELS_DIR).resolve("ocr-text-line");
  const manifest = JSON.parse(fs.readFileSync(path.join(shipped.dir, "model.json"), "utf8")) as Record<string, unknown>;
  fs.mkdirSync(path.join(dir, "ocr-text-line"));
  const versions = [{ version: shipped.version, file: modelFilePath(shipped) }];
  fs.writeFileSync(path.join(dir, "ocr-text-line", "model.json"), JSON.stringify({ ...manifest, versions }));
}

/**
 * A model repository in a temp dir: the real iris model plus the `lookup` test model, and with
 * `faultModels` the test-only `hang`, `crash`, `slow`, `poison` and `costly` models (see FAULT_MODELS),
 * which need FIXTURE_ADAPTERS_MODULE to load. They are opt-in so that the workers of other tests
 * neither start their threads nor list them. `cachedModels` adds `lookup-cached` (see
 * writeCachedLookupModel); `echoModels` an echo model of every datatype (see writeEchoModels);
 * `ocrTextLine` the shipped `ocr-text-line` (see writeOcrTextLine).
 */
export function createTestModelRepository(
  options: { faultModels?: boolean; cachedModels?: boolean; echoModels?: boolean; ocrTextLine?: boolean } = {},
): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-models-"));
  fs.cpSync(path.join(DEFAULT_MODELS_DIR, "iris"), path.join(dir, "iris"), {
    recursive: true,
    filter: (src) => !src.endsWith(".ts"),
  });
  writeLookupModel(dir, {
    name: "lookup",
    description: "test model: Gather over a 3-row table; an index out of range fails inside onnxruntime",
  });
  if (options.faultModels) for (const manifest of FAULT_MODELS) writeLookupModel(dir, manifest);
  if (options.cachedModels) writeCachedLookupModel(dir);
  if (options.echoModels) writeEchoModels(dir);
  if (options.ocrTextLine) writeOcrTextLine(dir);
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A copy of model repository `source` in a temp dir, for a worker whose models differ from the
 * API's (a rolling deploy): the test then edits the copy (drops a version, replaces a file).
 */
export function copyModelRepository(source: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-models-"));
  fs.cpSync(source, dir, { recursive: true });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
