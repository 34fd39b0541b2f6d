import { DEFAULT_DATABASE_URL, InferlineError } from "@inferline/contracts";
import { migrate } from "./migrate.ts";

// One line on every outcome, for a Job's or an init container's log; exit 1 on failure.
const url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
try {
  const applied = await migrate(url);
  if (applied.length === 0) console.log("database is up to date");
  else console.log(`applied ${applied.length} migration(s): ${applied.join(", ")}`);
} catch (err) {
  // Known failures (unreachable, a changed or failed migration) say what to do; a lost connection says what it was.
  const message = err instanceof InferlineError ? err.message : `migration failed: ${(err as Error).message}`;
  console.error(`inferline migrate: ${message}`);
  process.exitCode = 1;
}
