// Removes from INNER every top-level package that OUTER holds at the same version. Usage:
//   node dedupe-node-modules.mjs OUTER INNER
// where INNER is the node_modules of an app that will sit inside OUTER's app folder (the CLI in
// /app/cli, over the worker's /app/node_modules): Node's lookup goes on from INNER up to OUTER, so a
// package found there at the same version is the same package. A package whose version differs
// stays in INNER, and finds its own dependencies there first.
import fs from "node:fs";
import path from "node:path";

const [outer, inner] = process.argv.slice(2);
if (!outer || !inner) throw new Error("usage: node dedupe-node-modules.mjs OUTER INNER");

/** Top-level package folders of a node_modules: `name` or `@scope/name`. */
function packages(modules) {
  return fs.readdirSync(modules).flatMap((entry) => {
    if (entry.startsWith(".")) return [];
    if (!entry.startsWith("@")) return [entry];
    return fs.readdirSync(path.join(modules, entry)).map((name) => `${entry}/${name}`);
  });
}

function versionOf(modules, name) {
  const manifest = path.join(modules, name, "package.json");
  return fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, "utf8")).version : undefined;
}

let removed = 0;
for (const name of packages(inner)) {
  const version = versionOf(inner, name);
  if (version === undefined || versionOf(outer, name) !== version) continue;
  fs.rmSync(path.join(inner, name), { recursive: true, force: true });
  removed++;
}
for (const entry of fs.readdirSync(inner)) {
  const folder = path.join(inner, entry);
  if (entry.startsWith("@") && fs.readdirSync(folder).length === 0) fs.rmdirSync(folder);
}
console.log(`dedupe-node-modules: ${removed} package(s) of ${inner} are in ${outer}`);
