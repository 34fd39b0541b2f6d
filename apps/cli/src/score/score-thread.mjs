// Worker threads do not inherit the parent's TypeScript loader: start in plain JavaScript and
// load the real thread module through tsx (as packages/inference/src/pool-thread.mjs does).
import { register } from "tsx/esm/api";

register();
await import("./score-thread.ts");
