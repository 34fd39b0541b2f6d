// Builds and packs every published package and checks what a user would install: publint (the
// manifest and files), arethetypeswrong (the types resolve for TypeScript's ESM modes), one
// version for all, and for a bundle that every npm package it imports is a dependency of the same
// range as the workspace package it came from (and that it depends on nothing else).
//
// Usage: tsx scripts/check-packages.ts (CI's lint runs it as `pnpm check:packages`)
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import {
  build,
  pack,
  PUBLISHED,
  readManifest,
  ROOT,
  VERSION_FILE,
  type Manifest,
  type PublishedPackage,
} from "./published-packages.ts";

const bin = (name: string) => path.join(ROOT, "node_modules/.bin", name);

/** The packages (by name) the modules of a folder import, besides Node's own and relative ones. */
export function importedPackages(dir: string, extension: string): Set<string> {
  const names = new Set<string>();
  for (const file of fs.readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(extension)) continue;
    // TypeScript's pre-processor lists static and dynamic imports, and reads past strings that only look like them (SQL's `from "x"`).
    for (const { fileName: specifier } of ts.preProcessFile(fs.readFileSync(path.join(dir, file), "utf8"), true, true)
      .importedFiles) {
      if (specifier.startsWith(".") || specifier.startsWith("node:")) continue;
      const parts = specifier.split("/");
      names.add(specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!);
    }
  }
  return names;
}

/** The workspace packages a package's source bundles: those its src imports, and theirs in turn. */
function bundledWorkspace(dir: string): Map<string, Manifest> {
  const found = new Map<string, Manifest>();
  const visit = (name: string, from: string) => {
    if (!name.startsWith("@inferline/") || found.has(name)) return;
    const source = path.relative(ROOT, fs.realpathSync(path.join(ROOT, from, "node_modules", name)));
    const manifest = readManifest(source);
    found.set(name, manifest);
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency, source);
  };
  for (const name of importedPackages(path.join(ROOT, dir, "src"), ".ts")) visit(name, dir);
  return found;
}

/** Faults of a package's dependencies: imported but not declared, declared but not imported, or a range other than its bundled workspace source's. */
export function dependencyFaults(pkg: PublishedPackage): string[] {
  const manifest = readManifest(pkg.dir);
  const declared = manifest.dependencies ?? {};
  const imported = importedPackages(path.join(ROOT, pkg.dir, "dist"), ".mjs");
  const faults = [...imported]
    .filter((n) => !(n in declared))
    .map((n) => `${manifest.name}: dist imports ${n}, not among its dependencies`);
  faults.push(
    ...Object.keys(declared)
      .filter((n) => !imported.has(n))
      .map((n) => `${manifest.name}: depends on ${n}, which dist does not import`),
  );
  for (const [workspace, source] of bundledWorkspace(pkg.dir)) {
    for (const [name, range] of Object.entries(source.dependencies ?? {})) {
      if (name in declared && declared[name] !== range)
        faults.push(`${manifest.name}: ${name} ${declared[name]}, but ${workspace} (bundled) wants ${range}`);
    }
  }
  return faults;
}

/** Faults of the versions: every published package's, and VERSION in the client's version.ts, must be one. */
export function versionFaults(): string[] {
  const declared = /VERSION = "([^"]+)"/.exec(fs.readFileSync(VERSION_FILE, "utf8"))?.[1];
  return PUBLISHED.map((p) => readManifest(p.dir))
    .filter((m) => m.version !== declared)
    .map((m) => `${m.name} is ${m.version}, version.ts says ${declared}`);
}

/**
 * Builds, checks and packs every published package into `destination`; answers the tarballs.
 * Throws, after printing every fault found, when one is not fit to publish.
 */
export function checkPackages(destination: string): string[] {
  const faults = versionFaults();
  const tarballs: string[] = [];
  for (const pkg of PUBLISHED) {
    build(pkg);
    faults.push(...dependencyFaults(pkg));
    const tarball = pack(pkg, destination);
    execFileSync(bin("publint"), ["run", tarball, "--strict"], { stdio: "inherit" });
    if (pkg.types)
      execFileSync(bin("attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped"], { stdio: "inherit" });
    tarballs.push(tarball);
  }
  for (const fault of faults) console.error(`check-packages: ${fault}`);
  if (faults.length > 0) throw new Error(`${faults.length} fault(s) in the published packages`);
  return tarballs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const packed = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-packages-"));
  try {
    checkPackages(packed);
    console.log(
      `check-packages: ${PUBLISHED.map((p) => readManifest(p.dir).name).join(", ")} build, pack and pass publint and arethetypeswrong`,
    );
  } catch (err) {
    console.error(`check-packages: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    fs.rmSync(packed, { recursive: true, force: true });
  }
}
