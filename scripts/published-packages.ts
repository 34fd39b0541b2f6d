// The packages Inferline publishes to the npm registry, and how one is built and packed.
// scripts/check-packages.ts checks them (CI's lint runs it); scripts/release.ts bumps, builds,
// checks and packs them for `npm publish`.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface PublishedPackage {
  /** The folder, relative to the repository root. */
  dir: string;
  /** Whether it exports types for arethetypeswrong to check (the CLI has only a bin). */
  types: boolean;
}

export const PUBLISHED: readonly PublishedPackage[] = [
  { dir: "packages/client", types: true },
  { dir: "apps/cli", types: false },
];

/** The one version every published package carries, where the client's User-Agent and the CLI's --version read it. */
export const VERSION_FILE = path.join(ROOT, "packages/client/src/version.ts");

export interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(ROOT, dir, "package.json"), "utf8")) as Manifest;
}

/** The environment for npm: without the npm_config_* settings pnpm passes down, which npm warns about. */
const npmEnv = () =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_config_")));

/** Builds the package (its `build` script: tsdown). */
export function build(pkg: PublishedPackage): void {
  execFileSync("npm", ["run", "--silent", "build"], {
    cwd: path.join(ROOT, pkg.dir),
    env: npmEnv(),
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** Packs the built package with `npm pack` into `destination`; answers the tarball's path. */
export function pack(pkg: PublishedPackage, destination: string): string {
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", destination], {
    cwd: path.join(ROOT, pkg.dir),
    env: npmEnv(),
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const [packed] = JSON.parse(out) as Array<{ filename: string }>;
  return path.join(destination, packed!.filename);
}
