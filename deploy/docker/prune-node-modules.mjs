// Cuts a deployed app (`pnpm deploy --prod` into a hoisted node_modules) down to what its dist/ can
// load, on the platform this runs on (the Dockerfile's build stage, the image's platform). Usage:
//   node prune-node-modules.mjs APP_DIR...
//
// - Packages that nothing reaches but as an optional peer: the lockfile resolves optional peers
//   from the development install (prisma's CLI and typescript for @prisma/client, typescript for
//   @bull-board), and a production install of it brings them along though nothing loads them.
// - The workspace packages' copies (TypeScript sources: dist/ holds them compiled in).
// - onnxruntime-node's binaries for other systems and CPUs, and Prisma's engines for other
//   databases and runtimes (the generated client loads the Node client and PostgreSQL's compiler).
// - Source maps, type declarations and the .bin links.
import fs from "node:fs";
import path from "node:path";

const WORKSPACE_SCOPE = "@inferline";

function readManifest(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
}

/** Where Node finds package `name` from package folder `from`, up to the app's own folder. */
function resolvePackage(name, from, appDir) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    if (dir === appDir || dir === path.dirname(dir)) return undefined;
  }
}

/** What a package needs at run time: its dependencies, optional ones, and peers that are not optional. */
function runtimeDependencies(manifest) {
  const optionalPeers = new Set(
    Object.entries(manifest.peerDependenciesMeta ?? {}).flatMap(([name, meta]) => (meta?.optional ? [name] : [])),
  );
  const peers = Object.keys(manifest.peerDependencies ?? {}).filter((name) => !optionalPeers.has(name));
  return [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...peers];
}

/** Every package folder reachable from the app's manifest. */
function reachable(appDir) {
  const seen = new Set();
  const pending = [appDir];
  while (pending.length > 0) {
    const dir = pending.pop();
    for (const name of runtimeDependencies(readManifest(dir))) {
      const found = resolvePackage(name, dir, appDir);
      if (found && !seen.has(found)) {
        seen.add(found);
        pending.push(found);
      }
    }
  }
  return seen;
}

/** Package folders of a node_modules, nested ones included. */
function* packageFolders(modules) {
  if (!fs.existsSync(modules)) return;
  for (const entry of fs.readdirSync(modules)) {
    if (entry.startsWith(".")) continue;
    const names = entry.startsWith("@")
      ? fs.readdirSync(path.join(modules, entry)).map((n) => path.join(entry, n))
      : [entry];
    for (const name of names) {
      const dir = path.join(modules, name);
      yield dir;
      yield* packageFolders(path.join(dir, "node_modules"));
    }
  }
}

function removeUnreached(appDir) {
  const keep = reachable(appDir);
  const modules = path.join(appDir, "node_modules");
  const unreached = [...packageFolders(modules)].filter(
    (dir) => !keep.has(dir) || dir.startsWith(path.join(modules, WORKSPACE_SCOPE) + path.sep),
  );
  for (const dir of unreached) fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(path.join(modules, ".bin"), { recursive: true, force: true });
  for (const scope of fs.readdirSync(modules).filter((entry) => entry.startsWith("@"))) {
    if (fs.readdirSync(path.join(modules, scope)).length === 0) fs.rmdirSync(path.join(modules, scope));
  }
  return unreached.length;
}

/** Keeps only the entries of `dir` that `keep` accepts. */
function keepOnly(dir, keep) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir))
    if (!keep(entry)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
}

function removePlatformFiles(modules) {
  const onnxruntime = path.join(modules, "onnxruntime-node", "bin");
  for (const napi of fs.existsSync(onnxruntime) ? fs.readdirSync(onnxruntime) : []) {
    keepOnly(path.join(onnxruntime, napi), (os) => os === process.platform);
    keepOnly(path.join(onnxruntime, napi, process.platform), (cpu) => cpu === process.arch);
  }
  keepOnly(path.join(modules, "@prisma", "client", "runtime"), (file) =>
    /^(client|query_compiler_bg\.postgresql)\./.test(file),
  );
}

function removeDevelopmentFiles(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) removeDevelopmentFiles(file);
    else if (/\.(map|d\.[cm]?ts)$/.test(entry.name)) fs.rmSync(file);
  }
}

for (const appDir of process.argv.slice(2).map((dir) => path.resolve(dir))) {
  const removed = removeUnreached(appDir);
  const modules = path.join(appDir, "node_modules");
  removePlatformFiles(modules);
  removeDevelopmentFiles(modules);
  console.log(`prune-node-modules: ${appDir}: removed ${removed} package(s) nothing loads`);
}
