import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.ts";
import { redactUrl, ServiceUnavailableError } from "@inferline/contracts";

/** A pool or a client inside a transaction: what the multi-row statements run on. */
export type Queryable = pg.Pool | pg.PoolClient;

export interface DatabaseOptions {
  /** Pool size shared by Prisma and the raw hot-path statements. Default 10. */
  poolSize?: number;
}

/**
 * One pg pool behind both Prisma's typed client (for the cold paths) and raw multi-row
 * statements (for submit, claim and result writing, where Prisma's per-query cost would bound
 * throughput).
 */
export class Database {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;

  constructor(readonly url: string, options: DatabaseOptions = {}) {
    this.pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // An idle client that loses its server emits 'error' on the pool; without a listener that
    // would crash the process. The next query reports the failure instead.
    this.pool.on("error", () => {});
    this.prisma = new PrismaClient({ adapter: new PrismaPg(this.pool) });
  }

  /** Runs `fn` in one transaction on one client; rolls back when it throws. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("begin");
      const result = await fn(client);
      await client.query("commit");
      return result;
    } catch (err) {
      await client.query("rollback").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.prisma.$disconnect();
    await this.pool.end();
  }
}

export const POSTGRES_HINT = "start it with `docker compose up -d postgres`, or `pg_ctlcluster 15 main start` on Debian";

/** Throws a ServiceUnavailableError naming the URL and how to start PostgreSQL when it cannot be reached. */
export async function assertPostgresReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
  } catch (err) {
    const reason = (err as { code?: string; message?: string }).code ?? (err as Error).message;
    throw new ServiceUnavailableError("postgres_unreachable", `PostgreSQL is not reachable at ${redactUrl(url)} (${reason}); ${POSTGRES_HINT}`);
  } finally {
    await client.end().catch(() => {});
  }
}
