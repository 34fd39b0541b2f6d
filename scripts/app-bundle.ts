import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { defineConfig, type UserConfig } from "tsdown";

/** The Node line the bundles are compiled for: the floor of the root package.json's `engines.node`. */
const NODE_TARGET = `node${/\d+(\.\d+)*/.exec((JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { engines: { node: string } }).engines.node)![0]}`;

/** The entry that runs in the inference threads (see appBundle). */
export const THREAD_ENTRY = "pool-thread";

const WORKSPACE_PACKAGE = /^@inferline\//;

/** A bare specifier of an npm package (not a workspace package, a relative path or an absolute one). */
const isNpmPackage = (id: string): boolean => /^[@a-z]/i.test(id) && !WORKSPACE_PACKAGE.test(id);

/**
 * The file behind an export of a workspace package (`@inferline/db/migrate-cli`), as the app being
 * built resolves it: an entry point that the app's bundle takes from a package it depends on.
 */
export function workspaceEntry(specifier: string): string {
  return createRequire(path.join(process.cwd(), "package.json")).resolve(specifier);
}

/**
 * How a shipped app is compiled (`pnpm build`, tsdown): each entry to dist/<name>.js, with every
 * workspace package bundled in (they export TypeScript source) and every npm package left an
 * import, installed beside dist/ by `pnpm deploy --prod` (see the Dockerfile). npm packages stay
 * whole because some load their own files by path: onnxruntime's and sharp's binaries, Prisma's
 * query compiler.
 *
 * An entry named THREAD_ENTRY is written as dist/pool-thread.mjs: the inference thread pool starts
 * `./pool-thread.mjs` beside its own module, a shim that loads the TypeScript thread through tsx in
 * development and this compiled thread in the bundle.
 */
export function appBundle(entry: Record<string, string>): UserConfig {
  return defineConfig({
    entry,
    platform: "node",
    target: NODE_TARGET,
    deps: { alwaysBundle: [WORKSPACE_PACKAGE], neverBundle: isNpmPackage },
    outExtensions: () => ({ js: ".js" }),
    outputOptions: { entryFileNames: (chunk) => (chunk.name === THREAD_ENTRY ? "[name].mjs" : "[name].js") },
    hash: false,
    dts: false,
  });
}
