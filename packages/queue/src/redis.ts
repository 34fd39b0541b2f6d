import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { redactUrl, ServiceUnavailableError, type HostPort } from "@inferline/contracts";

export const REDIS_HINT = "start it with `docker compose up -d redis`, or `redis-server --daemonize yes`";

/** Bound on one command of a producer connection (see createRedis). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1000;

/**
 * `producer`: plain commands (queue adds, publishes, the API's reads); `worker`: BullMQ Workers
 * (which duplicate it for their blocking commands) and pub/sub subscribers.
 */
export type RedisRole = "producer" | "worker";

/** What every process talks to: one Redis, or a Redis Cluster (ioredis's two clients). */
export type RedisConnection = Redis | Cluster;

/**
 * Where Redis is: one server at a URL, or a cluster's seed nodes, whose credentials (user,
 * password) and TLS (`rediss:`) are the URL's.
 */
export type RedisTarget = string | { url: string; clusterNodes: readonly HostPort[] };

/** The target a process's environment names: REDIS_CLUSTER_NODES when set, else REDIS_URL. */
export function redisTarget(env: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: readonly HostPort[] | undefined;
}): RedisTarget {
  return env.REDIS_CLUSTER_NODES?.length
    ? { url: env.REDIS_URL, clusterNodes: env.REDIS_CLUSTER_NODES }
    : env.REDIS_URL;
}

/** Options a cluster's node connections cannot take (the Cluster client owns them). */
type NodeOptions = NonNullable<ClusterOptions["redisOptions"]>;

/**
 * A connection for BullMQ. Workers and subscribers need `maxRetriesPerRequest: null` and no
 * command timeout: BullMQ blocks on them (BZPOPMIN, a subscription) for as long as there is
 * nothing to do, and its docs ask for commands there to wait across reconnects. Producers keep a
 * bound on both, so a dead or hung Redis fails a request within `commandTimeout` (default
 * DEFAULT_REDIS_COMMAND_TIMEOUT_MS; pass `extra.commandTimeout` to change it) instead of holding
 * it; a command issued while reconnecting still waits in the offline queue up to that bound, so a
 * blip of a few hundred ms costs nothing. ioredis reconnects forever either way.
 *
 * On a cluster target the same options apply to each node's connection (BullMQ reads
 * `maxRetriesPerRequest` there). One difference: while the Cluster client itself is (re)discovering
 * the cluster, its own offline queue holds commands without that bound.
 */
export function createRedis(url: string, role?: RedisRole, extra?: RedisOptions): Redis;
export function createRedis(target: RedisTarget, role?: RedisRole, extra?: RedisOptions): RedisConnection;
export function createRedis(
  target: RedisTarget,
  role: RedisRole = "producer",
  extra: RedisOptions = {},
): RedisConnection {
  const options: RedisOptions = {
    maxRetriesPerRequest: role === "worker" ? null : 2,
    ...(role === "producer" ? { commandTimeout: DEFAULT_REDIS_COMMAND_TIMEOUT_MS } : {}),
    enableReadyCheck: true,
    ...extra,
  };
  const redis =
    typeof target === "string"
      ? new Redis(target, { lazyConnect: false, ...options })
      : new Cluster([...target.clusterNodes], {
          enableReadyCheck: true,
          redisOptions: { ...credentials(target.url), ...(options as NodeOptions) },
        });
  // ioredis reconnects by itself; without a listener each failed attempt would be an unhandled 'error'.
  redis.on("error", () => {});
  return redis;
}

/**
 * BullMQ's key prefix on `connection`: on a cluster, `prefix` in a hash tag, so that every key of
 * a queue lands in one slot (BullMQ's Lua scripts touch several); a prefix that already carries a
 * tag is kept. Every BullMQ Queue and Worker takes its prefix from here.
 */
export function bullmqPrefix(prefix: string, connection: RedisConnection): string {
  return connection.isCluster && !HASH_TAG.test(prefix) ? `{${prefix}}` : prefix;
}

/** Redis's own rule: the first `{`, then a non-empty run up to the next `}`. */
const HASH_TAG = /^[^{]*\{[^}]+\}/;

/** The user, password and TLS of a Redis URL, for a cluster's node connections. */
function credentials(url: string): Pick<RedisOptions, "username" | "password" | "tls"> {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** How a target is named in messages (no password). */
export function describeRedisTarget(target: RedisTarget): string {
  return typeof target === "string"
    ? redactUrl(target)
    : `cluster ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
}

/**
 * Plain connections that give up at once instead of retrying (start-up checks, the CLI): the
 * URL's server, or one per seed node of a cluster, in order.
 */
export function oneShotConnections(target: RedisTarget, timeoutMs: number): Redis[] {
  const options: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  };
  if (typeof target === "string") return [new Redis(target, options)];
  return target.clusterNodes.map(
    (node) => new Redis({ ...credentials(target.url), ...options, host: node.host, port: node.port }),
  );
}

/**
 * Throws a ServiceUnavailableError naming the target and how to start Redis when it cannot be
 * reached; a cluster needs one seed node that answers and reports `cluster_state:ok`.
 */
export async function assertRedisReachable(target: RedisTarget): Promise<void> {
  const probes = oneShotConnections(target, 3000);
  try {
    await Promise.any(probes.map((probe) => probeOnce(probe, typeof target !== "string")));
  } catch (err) {
    const first = err instanceof AggregateError ? (err.errors[0] as Error) : (err as Error);
    const reason = (first as { code?: string }).code ?? first.message;
    throw new ServiceUnavailableError(
      "redis_unreachable",
      `Redis is not reachable at ${describeRedisTarget(target)} (${reason}); ${REDIS_HINT}`,
    );
  } finally {
    for (const probe of probes) probe.disconnect();
  }
}

async function probeOnce(probe: Redis, cluster: boolean): Promise<void> {
  probe.on("error", () => {});
  await probe.connect();
  await probe.ping();
  if (!cluster) return;
  const info = String(await probe.call("CLUSTER", "INFO"));
  if (!/cluster_state:ok/.test(info)) throw new Error("cluster_state is not ok");
}
