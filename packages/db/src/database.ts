import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.ts";
import { OverloadedError, redactUrl, ServiceUnavailableError } from "@inferline/contracts";
import { isPostgresUnavailable } from "./dependency-errors.ts";

/** A pool or a client inside a transaction: what the multi-row statements run on. */
export type Queryable = pg.Pool | pg.PoolClient;

export interface DatabaseOptions {
  /** Pool size shared by Prisma and the raw hot-path statements. Default 10. */
  poolSize?: number;
  /**
   * How long opening a connection, or waiting for a free one in the pool, may take before the
   * request fails (and the API answers 503). Default 1500, so that a stopped or unreachable
   * server answers within 2 s.
   */
  connectTimeoutMs?: number;
  /** Server-side bound on one statement (PostgreSQL's statement_timeout); 0 for none. Default 30000. */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL's idle_in_transaction_session_timeout: a session left idle inside a transaction
   * this long is ended (its locks freed). Batch uploads stream items into an open transaction
   * while they read a slow client's body, so this must stay generous. Default 120000.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * Client-side bound on one query, for a server that stops answering at all (hung, or a network
   * that drops packets), which statement_timeout cannot catch. Default: statement timeout plus a
   * fifth of it, at most 1 s (none when statements are unbounded).
   */
  queryTimeoutMs?: number;
  /** Told when a connection of the pool breaks (a server restart): the process must not die of it. */
  onConnectionError?: (err: Error) => void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 1500;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 120_000;

/**
 * One pg pool behind both Prisma's typed client (for the cold paths) and raw multi-row
 * statements (for submit, claim and result writing, where Prisma's per-query cost would bound
 * throughput).
 */
export class Database {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;

  constructor(
    readonly url: string,
    options: DatabaseOptions = {},
  ) {
    const statementTimeout = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
    const queryTimeout =
      options.queryTimeoutMs ??
      (statementTimeout > 0 ? statementTimeout + Math.min(1000, Math.round(statementTimeout / 5)) : 0);
    this.pool = new BoundedPool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // Sent as startup parameters: no extra round trip per connection.
      statement_timeout: statementTimeout,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      ...(queryTimeout > 0 ? { query_timeout: queryTimeout } : {}),
      // Finds a peer that vanished without a FIN (a partition, a dead host) on idle connections.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    const onError = options.onConnectionError ?? (() => {});
    // An idle client that loses its server emits 'error' on the pool, and a client checked out
    // of it (Database.transaction, Prisma's adapter, BatchStore's drafts) emits 'error' on
    // itself, where pg-pool listens only while the client is idle: without these listeners a
    // server restart would crash the process. The query in flight reports the failure.
    this.pool.on("error", onError);
    this.pool.on("connect", (client) => client.on("error", onError));
    this.prisma = new PrismaClient({ adapter: new PrismaPg(poolForPrisma(this.pool)) });
  }

  /** Runs `fn` in one transaction on one client; rolls back when it throws. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /** One trivial statement: whether PostgreSQL answers through this pool (readiness). */
  async ping(): Promise<void> {
    await this.pool.query("select 1");
  }

  async close(): Promise<void> {
    await this.prisma.$disconnect();
    await this.pool.end();
  }
}

/** pg-pool's message when a checkout waited its whole connectionTimeoutMillis in the pool's queue. */
const QUEUE_TIMEOUT = /^timeout exceeded when trying to connect/;

type ConnectCallback = (
  err: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: unknown) => void,
) => void;

/**
 * A pg pool that tells a wait for one of its own connections from PostgreSQL being down. A
 * checkout that timed out in the queue while PostgreSQL kept finishing statements on this pool's
 * connections within that time means every connection was busy with work it was answering: this
 * process is overloaded (OverloadedError, 503 `overloaded`, Retry-After 1), not its database. Had
 * no statement finished meanwhile, PostgreSQL stopped answering, and pg's own error stands (a
 * dependency outage).
 */
class BoundedPool extends pg.Pool {
  private lastAnswer = 0;

  constructor(config: pg.PoolConfig) {
    super(config);
    // The protocol's ReadyForQuery ends every statement (and a transaction's each): PostgreSQL answered.
    this.on("connect", (client) => client.connection.on("readyForQuery", () => (this.lastAnswer = performance.now())));
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    if (!callback) return super.connect().catch((err: Error) => Promise.reject(this.translate(err)));
    super.connect((err, client, done) => callback(err ? this.translate(err) : undefined, client, done));
  }

  private translate(err: Error): Error {
    if (!QUEUE_TIMEOUT.test(err.message)) return err;
    const waited = this.options.connectionTimeoutMillis ?? 0;
    if (performance.now() - this.lastAnswer > waited) return err;
    return new OverloadedError(
      `every PostgreSQL connection of this process (${this.options.max}) was busy for ${waited} ms`,
      1,
      err,
    );
  }
}

/**
 * Runs `fn` in one transaction on a client of `pool`; rolls back when it throws. What
 * Database.transaction and the stores that need a transaction of their own share.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("begin");
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (err) {
    // A broken or hung connection is thrown away rather than handed to the next caller (and a
    // rollback on it would only wait for the query timeout again).
    if (isPostgresUnavailable(err)) broken = err as Error;
    else await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * The pool as Prisma's adapter sees it. @prisma/adapter-pg 6.19 gives a transaction's client back
 * only in commit() or rollback(), and Prisma's engine calls neither when its ROLLBACK statement
 * fails, which it does on a connection the server ended or that stopped answering: each
 * PostgreSQL restart during a Prisma transaction (its implicit ones included) leaked a pool slot
 * for good, and close() then hung (seen here). So a client checked out through this pool is
 * released, and discarded, as soon as it breaks or one of its queries fails for want of the
 * server; the adapter's own later release is then a no-op.
 */
function poolForPrisma(pool: pg.Pool): pg.Pool {
  const connect = async (): Promise<pg.PoolClient> => {
    const client = await pool.connect();
    const giveBack = client.release.bind(client);
    let released = false;
    const onBroken = (err: Error) => client.release(err);
    client.release = (err?: Error | boolean) => {
      if (released) return;
      released = true;
      client.removeListener("error", onBroken);
      delete (client as { query?: unknown }).query; // back to pg.Client's own for the next user
      giveBack(err);
    };
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const result = query(...args);
      if (result instanceof Promise)
        result.catch((err: unknown) => isPostgresUnavailable(err) && client.release(err as Error));
      return result;
    };
    client.on("error", onBroken);
    return client;
  };
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === "connect") return connect;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export const POSTGRES_HINT =
  "start it with `docker compose up -d postgres`, or `pg_ctlcluster 15 main start` on Debian";

/** Throws a ServiceUnavailableError naming the URL and how to start PostgreSQL when it cannot be reached. */
export async function assertPostgresReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
  } catch (err) {
    const reason = (err as { code?: string; message?: string }).code ?? (err as Error).message;
    throw new ServiceUnavailableError(
      "postgres_unreachable",
      `PostgreSQL is not reachable at ${redactUrl(url)} (${reason}); ${POSTGRES_HINT}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}
