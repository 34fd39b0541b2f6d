import { Redis, type RedisOptions } from "ioredis";
import { redactUrl, ServiceUnavailableError } from "@inferline/contracts";

export const REDIS_HINT = "start it with `docker compose up -d redis`, or `redis-server --daemonize yes`";

/** Bound on one command of a producer connection (see createRedis). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1000;

/**
 * `producer`: plain commands (queue adds, publishes, the API's reads); `worker`: BullMQ Workers
 * (which duplicate it for their blocking commands) and pub/sub subscribers.
 */
export type RedisRole = "producer" | "worker";

/**
 * A connection for BullMQ. Workers and subscribers need `maxRetriesPerRequest: null` and no
 * command timeout: BullMQ blocks on them (BZPOPMIN, a subscription) for as long as there is
 * nothing to do, and its docs ask for commands there to wait across reconnects. Producers keep a
 * bound on both, so a dead or hung Redis fails a request within `commandTimeout` (default
 * DEFAULT_REDIS_COMMAND_TIMEOUT_MS; pass `extra.commandTimeout` to change it) instead of holding
 * it; a command issued while reconnecting still waits in the offline queue up to that bound, so a
 * blip of a few hundred ms costs nothing. ioredis reconnects forever either way.
 */
export function createRedis(url: string, role: RedisRole = "producer", extra: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === "worker" ? null : 2,
    ...(role === "producer" ? { commandTimeout: DEFAULT_REDIS_COMMAND_TIMEOUT_MS } : {}),
    enableReadyCheck: true,
    lazyConnect: false,
    ...extra,
  });
  // ioredis reconnects by itself; without a listener each failed attempt would be an unhandled 'error'.
  redis.on("error", () => {});
  return redis;
}

/** Throws a ServiceUnavailableError naming the URL and how to start Redis when it cannot be reached. */
export async function assertRedisReachable(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    const reason = (err as { code?: string }).code ?? (err as Error).message;
    throw new ServiceUnavailableError("redis_unreachable", `Redis is not reachable at ${redactUrl(url)} (${reason}); ${REDIS_HINT}`);
  } finally {
    redis.disconnect();
  }
}
