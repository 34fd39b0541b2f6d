import fs from "node:fs";
import path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { ModelManifest, modelView, type ModelVersionSpec, type ModelView, type TensorSpec } from "@inferline/contracts";
import { modelFilePath, ModelRepository, type ResolvedModel } from "@inferline/runtime";
import { apiKeyOption, clientOf, jsonOption, modelsDirOption, remoteOption, type RemoteFlags } from "../cli-options.ts";
import { EXIT } from "../exit-codes.ts";
import { printRecords, type Column } from "../output.ts";
import { UsageError } from "../score/types.ts";
import { SHIPPED_MODELS_DIR, SHIPPED_MODELS_READ_ONLY } from "../shipped-files.ts";
import { checkManifest } from "../models/manifest-check.ts";
import { draftManifest } from "../models/manifest-draft.ts";
import { describeTensor } from "../models/tensor-text.ts";

interface AddFlags {
  name?: string;
  version: string;
  labels?: string[];
  labelsFile?: string;
  labelsFor?: string;
  features?: string[];
  featuresFor?: string;
  shape: Record<string, number[]>;
  description?: string;
  reference?: boolean;
  copy?: boolean;
  force?: boolean;
  warmup: boolean;
  modelsDir: string;
}

const tensorsText = (tensors: readonly TensorSpec[]) =>
  tensors.map((t) => `${t.name}:${t.datatype}[${t.shape.join(",")}]`).join(" ");

/** A model as `inferline models` prints it. */
const MODEL_COLUMNS: ReadonlyArray<Column<ModelView>> = [
  { header: "name", value: (m) => m.name },
  { header: "versions", value: (m) => m.versions.join(",") },
  { header: "inputs", value: (m) => tensorsText(m.inputs) },
  { header: "outputs", value: (m) => tensorsText(m.outputs) },
];

const list = (value: string): string[] =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

function shapeOption(value: string, previous: Record<string, number[]>): Record<string, number[]> {
  const match = /^([^=]+)=(-?\d+(?:,-?\d+)*)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError("expected <input>=<dims>, e.g. x=-1,3,48,192");
  const dims = match[2]!.split(",").map(Number);
  if (dims.some((d) => d < -1)) throw new InvalidArgumentError("dimensions are -1 (any size) or sizes from 0");
  return { ...previous, [match[1]!.trim()]: dims };
}

/** `inferline models` (the local repository's or a cluster's), `models add` and `models check`. */
export function registerModels(program: Command): void {
  const models = program
    .command("models")
    .description(
      "list the models (of the local repository, or of a cluster with --remote); `models add`, `models check`",
    )
    .addOption(remoteOption("list a cluster's models instead (its API base URL)"))
    .addOption(apiKeyOption())
    .addOption(modelsDirOption())
    .addOption(jsonOption())
    .action(async (opts: RemoteFlags & { modelsDir: string; json?: boolean }) => {
      const views = opts.remote ? await clientOf(opts).models.list() : localModels(opts.modelsDir);
      printRecords(views, MODEL_COLUMNS, opts.json);
    });
  models
    .command("add <file>")
    .description(
      "add an ONNX model to the repository: writes <models dir>/<name>/model.json from the graph's own inputs and outputs",
    )
    .option("--name <name>", "model name (lowercase letters, digits, dashes); default: from the file name")
    .option("--version <version>", "the version's name", "1")
    .option("--labels <a,b,c>", "class names of the classifier output, by index along its last dimension", list)
    .option("--labels-file <file>", "class names, one per line (or a JSON array)")
    .option("--labels-for <output>", "the output the labels belong to (default: the one they fit)")
    .option(
      "--features <a,b,c>",
      "column names of the tabular input, in order (CSV headers for `inferline score`)",
      list,
    )
    .option("--features-for <input>", "the input the features belong to (default: the one they fit)")
    .option(
      "--shape <input=dims>",
      "pin dimensions the graph leaves dynamic, e.g. x=-1,3,48,192 (repeatable)",
      shapeOption,
      {},
    )
    .option("--description <text>", "the manifest's description")
    .option("--copy", "copy the ONNX file into the model's folder (the default)")
    .option("--reference", "reference the file where it is (inside an installed npm package: by package name and path)")
    .option("--force", "replace a model of that name in this repository")
    .option("--no-warmup", "do not load and warm the model up before writing its manifest")
    .addOption(modelsDirOption())
    .action(async (file: string, flags: AddFlags) => {
      if (SHIPPED_MODELS_READ_ONLY && path.resolve(flags.modelsDir) === SHIPPED_MODELS_DIR) {
        throw new UsageError(
          "the models shipped with inferline are read-only: name your repository with --models-dir or MODELS_DIR",
        );
      }
      await addModel(file, flags);
    });
  models
    .command("check [name]")
    .description(
      `compare each manifest (or the named one) with its ONNX files: names, datatypes, shapes, labels and features; exit ${EXIT.failed} on any mismatch`,
    )
    .addOption(modelsDirOption())
    .action(async (name: string | undefined, flags: { modelsDir: string }) => {
      process.exitCode = await checkModels(flags.modelsDir, name);
    });
}

/** The local repository's models, as the API would show them. */
function localModels(dir: string): ModelView[] {
  const repo = ModelRepository.load(dir);
  return repo.names().map((name) => modelView(repo.manifest(name)));
}

async function addModel(file: string, flags: AddFlags): Promise<void> {
  if (flags.copy && flags.reference) throw new UsageError("--copy and --reference exclude each other");
  if (flags.labels && flags.labelsFile) throw new UsageError("--labels and --labels-file exclude each other");
  const source = path.resolve(file);
  if (!fs.existsSync(source) || !fs.statSync(source).isFile()) throw new UsageError(`${file} is not a file`);
  const name = flags.name ?? nameFromFile(source);
  const nameCheck = ModelManifest.shape.name.safeParse(name);
  if (!nameCheck.success)
    throw new UsageError(
      `model name '${name}' must be 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit${flags.name ? "" : " (derived from the file name: pass --name)"}`,
    );
  const root = path.resolve(flags.modelsDir);
  if (!fs.existsSync(root))
    throw new UsageError(`model repository ${root} does not exist (create it, or pass --models-dir)`);
  const dir = path.join(root, name);
  assertFreeName(root, name, dir, flags.force ?? false);

  const { readOnnxSignature, LoadedModel } = await import("@inferline/inference");
  const signature = await readOnnxSignature(source).catch((err: unknown) => {
    throw new UsageError(`${file} is not an ONNX model onnxruntime can load: ${(err as Error).message}`);
  });
  const spec = flags.reference ? referenceSpec(source, dir, name, flags.version) : { file: path.basename(source) };
  const { manifest, notes } = draftManifest(signature, {
    name,
    version: flags.version,
    spec,
    labels: flags.labels ?? (flags.labelsFile ? readLabels(flags.labelsFile) : undefined),
    labelsFor: flags.labelsFor,
    features: flags.features,
    featuresFor: flags.featuresFor,
    shapes: flags.shape,
    description: flags.description ?? `${path.basename(source)}, added by inferline models add`,
  });

  if (flags.warmup) {
    // The worker's own load and warm-up run, on the file where it is now, before anything is
    // written: a manifest that would fail at a worker's start-up is never written.
    const trial: ResolvedModel = {
      manifest,
      version: flags.version,
      dir,
      spec: { version: flags.version, file: source },
    };
    const loaded = await LoadedModel.load(trial).catch((err: unknown) => {
      throw new UsageError(
        `the model does not load as described: ${(err as Error).message} (--shape can pin dimensions; --no-warmup skips this check)`,
      );
    });
    await loaded.release();
  }

  fs.mkdirSync(dir, { recursive: true });
  if (spec.file && !flags.reference) {
    const target = path.join(dir, spec.file);
    if (!fs.existsSync(target) || fs.realpathSync(target) !== fs.realpathSync(source)) fs.copyFileSync(source, target);
  }
  const manifestFile = path.join(dir, "model.json");
  const temporary = `${manifestFile}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  fs.renameSync(temporary, manifestFile);

  const labelled = (labels?: string[]) => (labels ? ` labels ${labels.join(",")}` : "");
  console.log(`added model ${name} (version ${flags.version}) in ${manifestFile}`);
  console.log(`  file     ${spec.file ? path.resolve(dir, spec.file) : `${spec.package!.name}/${spec.package!.path}`}`);
  for (const i of manifest.inputs)
    console.log(
      `  input    '${i.name}' ${i.datatype} [${i.shape.join(",")}]${i.features ? ` features ${i.features.join(",")}` : ""}`,
    );
  for (const o of manifest.outputs)
    console.log(`  output   '${o.name}' ${o.datatype} [${o.shape.join(",")}]${labelled(o.labels)}`);
  console.log(
    `  batching maxBatchSize ${manifest.batching.maxBatchSize}, maxQueueDelayMs ${manifest.batching.maxQueueDelayMs}`,
  );
  console.log(`  warm-up  ${flags.warmup ? "ok" : "skipped"}`);
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    "Workers serve it from their next start (WORKER_MODELS=* or naming it); API processes list it once restarted.",
  );
}

/** Refuses a name that this folder, or another folder of the repository, already holds (the folder's unless --force). */
function assertFreeName(root: string, name: string, dir: string, force: boolean): void {
  if (fs.existsSync(path.join(dir, "model.json")) && !force)
    throw new UsageError(`model ${name} exists (${path.join(dir, "model.json")}); --force replaces it`);
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    const other = path.join(root, entry.name);
    if (!entry.isDirectory() || other === dir) continue;
    try {
      const held = (JSON.parse(fs.readFileSync(path.join(other, "model.json"), "utf8")) as { name?: unknown }).name;
      if (held === name)
        throw new UsageError(`folder ${other} already holds a model named ${name}; remove it, or pick another --name`);
    } catch (err) {
      if (err instanceof UsageError) throw err; // a folder without a readable manifest holds no name
    }
  }
}

/** `ch_ppocr_mobile_v2.0_cls_infer.onnx` → `ch-ppocr-mobile-v2-0-cls-infer`. */
function nameFromFile(file: string): string {
  return path
    .basename(file)
    .replace(/\.onnx$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
}

function readLabels(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  if (/\.json$/i.test(file)) {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed) || !parsed.every((l) => typeof l === "string"))
      throw new UsageError(`${file}: expected a JSON array of strings`);
    return parsed;
  }
  const labels = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (labels.length === 0) throw new UsageError(`${file} holds no labels`);
  return labels;
}

/**
 * Where the manifest points for --reference: inside an installed npm package, by package name and
 * path (as models/ocr-text-line does), when the model's folder resolves that package to this very
 * file; otherwise by path (relative when inside the repository's tree, else absolute).
 */
function referenceSpec(source: string, dir: string, name: string, version: string): Omit<ModelVersionSpec, "version"> {
  const real = fs.realpathSync(source);
  const pkg = enclosingPackage(real);
  if (pkg) {
    const spec = { package: pkg };
    try {
      const resolved = modelFilePath({ manifest: { name } as ModelManifest, version, dir, spec: { version, ...spec } });
      if (fs.existsSync(resolved) && fs.realpathSync(resolved) === real) return spec;
    } catch {
      // Not installed where the model's folder looks: referenced by path below.
    }
  }
  const relative = path.relative(dir, source);
  return { file: relative.startsWith(`..${path.sep}..${path.sep}`) ? source : relative };
}

/** The npm package (under a node_modules folder) that holds `file`, with the file's path inside it. */
function enclosingPackage(file: string): { name: string; path: string } | undefined {
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (!fs.existsSync(manifest)) continue;
    if (!dir.split(path.sep).includes("node_modules")) return undefined;
    const pkgName = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: unknown }).name;
    return typeof pkgName === "string"
      ? { name: pkgName, path: path.relative(dir, file).split(path.sep).join("/") }
      : undefined;
  }
  return undefined;
}

/** Prints each version's result; answers the exit code: 0 all match, EXIT.failed any mismatch. */
async function checkModels(root: string, only: string | undefined): Promise<number> {
  if (!fs.existsSync(root)) throw new UsageError(`model repository ${path.resolve(root)} does not exist`);
  const { readOnnxSignature } = await import("@inferline/inference");
  const folders = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(root, e.name, "model.json")));
  let faults = 0;
  let checked = 0;
  for (const folder of folders.sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.resolve(root, folder.name);
    const manifestFile = path.join(dir, "model.json");
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
    } catch (err) {
      if (only && only !== folder.name) continue;
      checked++;
      faults++;
      console.log(`${folder.name}: ${manifestFile} is not JSON: ${(err as Error).message}`);
      continue;
    }
    const parsed = ModelManifest.safeParse(raw);
    const rawName = (raw as { name?: unknown } | null)?.name;
    const name = parsed.success ? parsed.data.name : typeof rawName === "string" ? rawName : folder.name;
    if (only && only !== name) continue;
    checked++;
    if (!parsed.success) {
      faults++;
      console.log(`${name}: ${manifestFile} is not a valid manifest`);
      for (const issue of parsed.error.issues) console.log(`  - ${issue.path.join(".") || "(root)"}: ${issue.message}`);
      continue;
    }
    for (const spec of parsed.data.versions) {
      const model: ResolvedModel = { manifest: parsed.data, version: spec.version, dir, spec };
      const label = `${name}@${spec.version}`;
      let file: string;
      try {
        file = modelFilePath(model);
      } catch (err) {
        faults++;
        console.log(`${label}: ${(err as Error).message}`);
        continue;
      }
      if (!fs.existsSync(file)) {
        faults++;
        console.log(`${label}: ${file} does not exist`);
        continue;
      }
      const graph = await readOnnxSignature(file).catch((err: unknown) => err as Error);
      if (graph instanceof Error) {
        faults++;
        console.log(`${label}: ${file} does not load in onnxruntime: ${graph.message}`);
        continue;
      }
      const { mismatches, notes } = checkManifest(parsed.data, graph);
      faults += mismatches.length;
      console.log(
        `${label} (${path.relative(process.cwd(), file) || file}): ${mismatches.length === 0 ? "ok" : `${mismatches.length} mismatch${mismatches.length === 1 ? "" : "es"}`}`,
      );
      for (const m of mismatches) console.log(`  - ${m}`);
      for (const n of notes) console.log(`  note: ${n}`);
      if (mismatches.length > 0)
        console.log(
          `  the model's inputs: ${graph.inputs.map(describeTensor).join(", ")}; outputs: ${graph.outputs.map(describeTensor).join(", ")}`,
        );
    }
  }
  if (only && checked === 0) throw new UsageError(`no model named ${only} in ${path.resolve(root)}`);
  if (checked === 0) console.log(`no models in ${path.resolve(root)}`);
  return faults > 0 ? EXIT.failed : EXIT.ok;
}
