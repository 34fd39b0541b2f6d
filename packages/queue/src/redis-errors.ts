/**
 * Which errors mean "Redis is unavailable right now" (killed, restarting, loading its data, hung)
 * rather than a bug: the API answers those with 503 + Retry-After. BullMQ passes ioredis's
 * errors through unchanged (or as a `cause`).
 *
 * ioredis 5.11: a command issued while the connection is down waits in the offline queue and is
 * rejected with MaxRetriesPerRequestError after `maxRetriesPerRequest` reconnect attempts, with
 * "Command timed out" at `commandTimeout`, or with "Connection is closed." once the client has
 * given up; without the offline queue, at once with "Stream isn't writeable…".
 */

/** What is wrong with Redis, as one word (also what /readyz reports). */
export type RedisFailure = "unreachable" | "timeout" | "terminated" | "starting" | "overloaded";

const MESSAGES: Array<[RegExp, RedisFailure]> = [
  [/^Command timed out/, "timeout"],
  [/^Reached the max retries per request limit/, "unreachable"],
  [/^Connection is closed\./, "terminated"],
  [/^Stream isn't writeable/, "unreachable"],
  [/^Cluster isn't ready/, "unreachable"],
  [/^Cluster is disconnect/, "unreachable"],
  [/^None of startup nodes is available/, "unreachable"],
  [/^Node is disconnected/, "unreachable"],
  [/^Socket timeout/, "timeout"],
  [/^Ready check failed/, "starting"],
  // Server replies (ReplyError) that say "not now" rather than "wrong command".
  [/^LOADING\b/, "starting"],
  [/^MASTERDOWN\b/, "unreachable"],
  [/^CLUSTERDOWN\b/, "unreachable"],
  [/^TRYAGAIN\b/, "overloaded"],
  [/^BUSY\b/, "overloaded"],
];

type Node = { name?: unknown; message?: unknown; cause?: unknown; lastNodeError?: unknown };

function classifyOne(e: Node): RedisFailure | undefined {
  if (e.name === "MaxRetriesPerRequestError") return "unreachable";
  const message = typeof e.message === "string" ? e.message : "";
  return MESSAGES.find(([pattern]) => pattern.test(message))?.[1];
}

/** The failure an error stands for when it says Redis is unavailable, else undefined (looks through `cause`). */
export function redisFailure(err: unknown): RedisFailure | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e && typeof e === "object"; depth++) {
    const found = classifyOne(e);
    if (found) return found;
    e = (e as Node).cause ?? (e as Node).lastNodeError;
  }
  return undefined;
}

/** True when `err` means Redis is unavailable (see redisFailure). */
export function isRedisUnavailable(err: unknown): boolean {
  return redisFailure(err) !== undefined;
}
