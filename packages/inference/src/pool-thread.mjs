// Worker threads do not inherit the parent's TypeScript loader, so the thread starts here, in
// plain JavaScript, and loads the real thread module through tsx (development and tests only: an
// app's bundle writes the compiled thread under this name, see scripts/app-bundle.ts).
import { register } from "tsx/esm/api";

register();
await import("./pool-thread.ts");
