import { Redis, type RedisOptions } from "ioredis";
import { redactUrl, ServiceUnavailableError } from "@inferline/contracts";

export const REDIS_HINT = "start it with `docker compose up -d redis`, or `redis-server --daemonize yes`";

/**
 * A connection for BullMQ. Workers and subscribers need `maxRetriesPerRequest: null` (BullMQ
 * blocks on them); producers keep a bound so a dead Redis fails a request instead of hanging it.
 */
export function createRedis(url: string, role: "producer" | "worker" = "producer", extra: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === "worker" ? null : 2,
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
