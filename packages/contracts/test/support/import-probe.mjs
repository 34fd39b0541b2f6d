// Imports the module named by argv[2] and prints what trap-io.mjs recorded meanwhile, as JSON.
import { pathToFileURL } from "node:url";

await import(pathToFileURL(process.argv[2]).href);
process.stdout.write(JSON.stringify(globalThis.__touched));
