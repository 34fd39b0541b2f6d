import { postgresFailure, type Database } from "@inferline/db";

/** Anything with a connection status: a Redis or a Cluster. */
type Connection = { status: string };

/** How long /readyz waits for PostgreSQL's answer before calling it away. */
const READY_PING_MS = 1000;

/** Why PostgreSQL does not answer within `ms`, or undefined when it does. */
async function pingWithin(db: Database, ms: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("PostgreSQL does not answer"), ms)));
  const answer = db.ping().then(
    () => undefined,
    (err: unknown) => `PostgreSQL is ${postgresFailure(err) ?? "failing"}`,
  );
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The worker's /readyz: why it is not ready (a Redis connection not ready, PostgreSQL failing or
 * silent), or undefined when it is.
 */
export function dependencyReadiness(
  db: Database,
  connections: ReadonlyArray<readonly [name: string, redis: Connection]>,
): () => Promise<string | undefined> {
  return async () => {
    for (const [name, redis] of connections) {
      if (redis.status !== "ready") return `${name} connection is ${redis.status}`;
    }
    return pingWithin(db, READY_PING_MS);
  };
}
