import { DEFAULT_DATABASE_URL, ServiceUnavailableError } from "@inferline/contracts";
import { migrate } from "./migrate.ts";

const url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
try {
  const applied = await migrate(url);
  console.log(applied.length ? `applied ${applied.length} migration(s): ${applied.join(", ")}` : "database is up to date");
} catch (err) {
  console.error(err instanceof ServiceUnavailableError ? err.message : `migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
