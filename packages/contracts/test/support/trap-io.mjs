// Preloaded before @inferline/contracts is imported (see import-purity.test.ts): records every read
// of the environment and every file system call made on this thread from then on.
import fs from "node:fs";

const touched = [];
globalThis.__touched = touched;
/** Records `what` when a module of the workspace's packages asked for it (not Node or the TypeScript loader). */
function note(what) {
  const frames = (new Error().stack ?? "").split("\n").slice(2);
  const caller = frames.find(
    (frame) =>
      frame.includes("/packages/") &&
      !frame.includes("/node_modules/") &&
      !frame.includes("trap-io") &&
      !frame.includes("import-probe"),
  );
  if (caller) touched.push(`${what} (${caller.trim()})`);
}
const env = process.env;
process.env = new Proxy(env, {
  get(target, key) {
    if (typeof key === "string") note(`env ${key}`);
    return Reflect.get(target, key);
  },
  has(target, key) {
    if (typeof key === "string") note(`env ${key}`);
    return Reflect.has(target, key);
  },
  ownKeys(target) {
    note("env (all keys)");
    return Reflect.ownKeys(target);
  },
});
for (const name of Object.keys(fs)) {
  const original = fs[name];
  if (typeof original !== "function" || !/^[a-z]/.test(name) || name === "Stats") continue;
  fs[name] = function (...args) {
    note(`fs.${name} ${String(args[0])}`);
    return original.apply(this, args);
  };
}
