/**
 * `pnpm start`: everything a developer needs, in one command. Checks PostgreSQL and Redis, applies
 * migrations, creates a development API key and prints it, then runs the API and one worker
 * with readable, prefixed logs. Ctrl-C stops both (each finishes its in-flight work first).
 */
import "@inferline/runtime/load-dot-env";
import concurrently from "concurrently";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, InferlineError } from "@inferline/contracts";
import { assertPostgresReachable, Database, migrate, TenantStore } from "@inferline/db";
import { assertRedisReachable } from "@inferline/queue";

const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
const port = process.env.PORT ?? "3000";

async function prepare(): Promise<string> {
  await Promise.all([
    assertPostgresReachable(new URL("/postgres", databaseUrl).toString()),
    assertRedisReachable(redisUrl),
  ]);
  const applied = await migrate(databaseUrl);
  if (applied.length) console.log(`applied migrations: ${applied.join(", ")}`);
  const db = new Database(databaseUrl, { poolSize: 1 });
  try {
    return (await new TenantStore(db.pool, db.prisma).createKey("dev", "created by pnpm start")).key;
  } finally {
    await db.close();
  }
}

try {
  const key = await prepare();
  console.log(`
  Inferline is starting on http://127.0.0.1:${port}
  development API key (tenant "dev"):

    ${key}

  try:
    curl -s -X POST http://127.0.0.1:${port}/v1/jobs -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
      -d '{"model":"iris","inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
`);
  const env = {
    ...process.env,
    LOG_PRETTY: process.env.LOG_PRETTY ?? "true",
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: port,
  };
  const { result } = concurrently(
    [
      {
        command: "node --import ./packages/runtime/src/early-signals.mjs --import tsx apps/api/src/main.ts",
        name: "api",
        prefixColor: "cyan",
        env,
      },
      {
        command: "node --import ./packages/runtime/src/early-signals.mjs --import tsx apps/worker/src/main.ts",
        name: "worker",
        prefixColor: "green",
        env,
      },
    ],
    { killOthersOn: ["failure"], prefix: "name", handleInput: false },
  );
  // concurrently forwards Ctrl-C/SIGTERM to both processes; each then finishes its work and exits.
  // Their shells report the signal as the exit reason, so a requested stop counts as clean.
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => (stopping = true));
  await result.then(
    () => process.exit(0),
    () => process.exit(stopping ? 0 : 1),
  );
} catch (err) {
  console.error(err instanceof InferlineError ? `inferline: ${err.message}` : err);
  process.exit(1);
}
