import { OverloadedError } from "@inferline/contracts";

const OVERLOADED = new OverloadedError("").code;

/**
 * Which errors mean "PostgreSQL is unavailable right now" (stopped, restarting, unreachable,
 * hung or overloaded) rather than "this request is wrong" or "this code has a bug": the API
 * answers those with 503 + Retry-After and the workers retry them.
 *
 * Shapes seen here (pg 8.23, Prisma 6.19 with @prisma/adapter-pg, PostgreSQL 15):
 * - pg: a DatabaseError with `code` (SQLSTATE) and `severity`, e.g. 57P01 when the server shuts
 *   down under an open session, 57014 at statement_timeout; Node socket errors (ECONNREFUSED from
 *   connect); plain Errors: "Connection terminated unexpectedly", "Connection terminated due to
 *   connection timeout", "timeout exceeded when trying to connect" (pool checkout),
 *   "Query read timeout" (query_timeout).
 * - Prisma model queries: a DriverAdapterError whose `cause` is `{kind: "postgres", code}` or
 *   `{kind: "DatabaseNotReachable" | "ConnectionClosed" | "SocketTimeout" | "TooManyConnections"}`;
 *   raw queries ($queryRaw): a PrismaClientKnownRequestError P2010 with that same object under
 *   `meta.driverAdapterError.cause`; an unreachable server on a model query: P1001. Errors the
 *   adapter cannot map (the plain pg Errors above) come through Prisma unchanged.
 */

/**
 * What is wrong with PostgreSQL, as one word (also what /readyz reports). `busy`: not PostgreSQL
 * but this process, whose every pool connection was busy past the wait's bound (see BoundedPool).
 */
export type PostgresFailure = "unreachable" | "timeout" | "terminated" | "starting" | "overloaded" | "busy";

/** SQLSTATEs of an unavailable server; classes 08 (connection exception) are matched by prefix. */
const SQLSTATES: Record<string, PostgresFailure> = {
  "57P01": "terminated", // admin_shutdown: fast stop, pg_terminate_backend
  "57P02": "terminated", // crash_shutdown: another backend crashed
  "57P03": "starting", // cannot_connect_now: starting up, shutting down, in recovery
  "57P05": "terminated", // idle_session_timeout
  "25P03": "terminated", // idle_in_transaction_session_timeout
  "53300": "overloaded", // too_many_connections
  "57014": "timeout", // query_canceled: statement_timeout (a client's own cancel is not used here)
};

const SOCKET_CODES: Record<string, PostgresFailure> = {
  ECONNREFUSED: "unreachable",
  ENOTFOUND: "unreachable",
  EAI_AGAIN: "unreachable",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  ECONNRESET: "terminated",
  EPIPE: "terminated",
  ETIMEDOUT: "timeout",
};

/** pg's own messages for a lost or never-made connection, and its client-side timeouts. */
const MESSAGES: Array<[RegExp, PostgresFailure]> = [
  [/^timeout exceeded when trying to connect/i, "timeout"],
  [/^Connection terminated due to connection timeout/i, "timeout"],
  [/^Query read timeout/i, "timeout"],
  [/^Connection terminated/i, "terminated"],
  [/^Client has encountered a connection error and is not queryable/i, "terminated"],
  [/^Client was closed and is not queryable/i, "terminated"],
  [/^Cannot use a pool after calling end on the pool/i, "terminated"],
];

/** Prisma's error codes for connection trouble (https://www.prisma.io/docs/orm/reference/error-reference). */
const PRISMA_CODES: Record<string, PostgresFailure> = {
  P1001: "unreachable", // can't reach database server
  P1002: "timeout", // server reached but timed out
  P1008: "timeout", // operations timed out
  P1017: "terminated", // server has closed the connection
  P2024: "timeout", // timed out fetching a connection from the pool
};

/** The adapter's `kind`s (see @prisma/adapter-pg's convertDriverError). */
const ADAPTER_KINDS: Record<string, PostgresFailure> = {
  DatabaseNotReachable: "unreachable",
  ConnectionClosed: "terminated",
  SocketTimeout: "timeout",
  TooManyConnections: "overloaded",
};

type Node = {
  name?: unknown;
  code?: unknown;
  kind?: unknown;
  originalCode?: unknown;
  severity?: unknown;
  syscall?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
};

function classifyOne(e: Node): PostgresFailure | undefined {
  // A wait for a connection of this process's own pool (see BoundedPool): retried as any outage.
  // Prisma passes it on as a PrismaClientKnownRequestError that keeps only its code.
  if (e instanceof OverloadedError || (e.code === OVERLOADED && String(e.name).startsWith("PrismaClient")))
    return "busy";
  const sqlstate =
    typeof e.originalCode === "string"
      ? e.originalCode
      : typeof e.code === "string" && (typeof e.severity === "string" || e.kind === "postgres")
        ? e.code
        : undefined;
  if (sqlstate) return SQLSTATES[sqlstate] ?? (sqlstate.startsWith("08") ? "unreachable" : undefined);
  if (typeof e.kind === "string" && ADAPTER_KINDS[e.kind]) return ADAPTER_KINDS[e.kind];
  if (typeof e.code === "string" && PRISMA_CODES[e.code] && String(e.name).startsWith("PrismaClient"))
    return PRISMA_CODES[e.code];
  if (typeof e.code === "string" && typeof e.syscall === "string" && SOCKET_CODES[e.code]) return SOCKET_CODES[e.code];
  if (String(e.name) === "PrismaClientInitializationError") return "unreachable";
  const message = typeof e.message === "string" ? e.message : "";
  return MESSAGES.find(([pattern]) => pattern.test(message))?.[1];
}

/**
 * The failure an error stands for when it says PostgreSQL is unavailable, else undefined. Looks
 * through the wrappers (Prisma's `meta.driverAdapterError`, `cause`, AggregateError's `errors`).
 */
export function postgresFailure(err: unknown): PostgresFailure | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift();
    if (!e || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    const node = e as Node;
    const found = classifyOne(node);
    if (found) return found;
    queue.push(
      node.meta?.driverAdapterError,
      node.cause,
      ...((e as { errors?: unknown }).errors instanceof Array ? (e as { errors: unknown[] }).errors : []),
    );
  }
  return undefined;
}

/** True when `err` means PostgreSQL is unavailable (see postgresFailure). */
export function isPostgresUnavailable(err: unknown): boolean {
  return postgresFailure(err) !== undefined;
}
