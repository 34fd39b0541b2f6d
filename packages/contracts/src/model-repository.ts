import fs from "node:fs";
import path from "node:path";
import { ModelManifest, type ModelVersionSpec } from "./manifest.ts";
import { InferlineError, NotFoundError } from "./errors.ts";

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
    if (!fs.existsSync(repo.root)) throw new InferlineError("models_dir_missing", `model repository ${repo.root} does not exist`);
    for (const entry of fs.readdirSync(repo.root, { withFileTypes: true })) {
      const file = path.join(repo.root, entry.name, "model.json");
      if (!entry.isDirectory() || !fs.existsSync(file)) continue;
      const parsed = ModelManifest.safeParse(JSON.parse(fs.readFileSync(file, "utf8")));
      if (!parsed.success) {
        throw new InferlineError("invalid_manifest", `${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
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

  /** The model at a version (default: the manifest's defaultVersion or its last version). */
  resolve(name: string, version?: string): ResolvedModel {
    const entry = this.models.get(name);
    if (!entry) throw new NotFoundError("model", name);
    const { manifest, dir } = entry;
    const wanted = version ?? manifest.defaultVersion ?? manifest.versions[manifest.versions.length - 1]!.version;
    const spec = manifest.versions.find((v) => v.version === wanted);
    if (!spec) throw new NotFoundError("model version", `${name}/${wanted}`);
    return { manifest, version: wanted, dir, spec };
  }
}
