// Imported first, for its effect, by each process's entry point (the API, the worker, `pnpm start`)
// so that a module reading its environment as it loads sees the file's settings too: loads `.env`
// from the working directory (the project's root; /app in the images) when the file is there. A
// variable the environment already sets keeps its value: process.loadEnvFile never overrides one.
import fs from "node:fs";

const DOT_ENV = ".env";

if (fs.existsSync(DOT_ENV)) process.loadEnvFile(DOT_ENV);
