import type { RedisConnection } from "./redis.ts";

/**
 * The sorted set of live leases on one tenant's cap: on one model, or (`*`) over every model. The
 * tenant's id is a hash tag, so on a Redis Cluster a tenant's keys share a slot (one script takes
 * leases on two of them); a prefix that carries a tag of its own puts every key in its slot.
 */
export function tenantCapKey(prefix: string, tenantId: string, model: string): string {
  return `${prefix}:tenant-cap:{${tenantId}}:${model}`;
}

/** One cap an entry must fit under: its key and its limit. */
export interface CapSlot {
  key: string;
  maxRunning: number;
}

/**
 * Takes `weight` (each slot's own, at most its limit) under every slot or under none. Members are
 * `lease#weight`, scored by the lease's expiry; expired ones are pruned first, so a dead worker's
 * capacity comes back when its lease lapses. Returns 1 when taken, 0 when any slot is full.
 * KEYS: the slots. ARGV: now, expiry, lease id, then for each slot its limit and weight.
 */
const ACQUIRE = `
local now, expiry, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local limit, weight = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local used = 0
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    used = used + tonumber(string.match(member, '#(%d+)$') or '1')
  end
  if used + weight > limit then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, lease .. '#' .. ARGV[3 + 2 * i])
  redis.call('PEXPIREAT', key, expiry)
end
return 1`;

/**
 * Pushes a lease's expiry out on every slot (re-adding it where it lapsed: the work is still
 * running). A key lives as long as its latest lease: every lease lasts leaseMs from its last
 * write, so the newest expiry is the latest. ARGV: expiry, then each slot's member.
 */
const RENEW = `
local expiry = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, ARGV[1 + i])
  redis.call('PEXPIREAT', key, expiry)
end
return 1`;

/** The weight of the live leases of one slot. ARGV: now. */
const COUNT = `
local used = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  used = used + tonumber(string.match(member, '#(%d+)$') or '1')
end
return used`;

/** A lease held on one or more caps: renew it while the work runs, release it when it ends. */
export interface CapLease {
  id: string;
  slots: Array<{ key: string; member: string }>;
}

/**
 * Concurrency caps shared by every worker: each cap is a Redis sorted set of leases scored by
 * their expiry, taken and pruned in one script, so a crashed worker's leases lapse after `leaseMs`
 * instead of leaking capacity. Time is the caller's clock (workers' clocks are assumed to agree
 * within a small fraction of `leaseMs`).
 */
export class TenantLeases {
  constructor(
    private readonly redis: RedisConnection,
    private readonly leaseMs: number,
  ) {}

  /** Takes `weight` of every slot (at most each slot's limit), or none; null when any is full. */
  async acquire(id: string, slots: CapSlot[], weight: number): Promise<CapLease | null> {
    const now = Date.now();
    const weights = slots.map((s) => Math.max(1, Math.min(weight, s.maxRunning)));
    const args = [
      String(now),
      String(now + this.leaseMs),
      id,
      ...slots.flatMap((s, i) => [String(s.maxRunning), String(weights[i])]),
    ];
    const taken = await this.redis.eval(ACQUIRE, slots.length, ...slots.map((s) => s.key), ...args);
    if (taken !== 1) return null;
    return { id, slots: slots.map((s, i) => ({ key: s.key, member: `${id}#${weights[i]}` })) };
  }

  async renew(lease: CapLease): Promise<void> {
    await this.redis.eval(
      RENEW,
      lease.slots.length,
      ...lease.slots.map((s) => s.key),
      String(Date.now() + this.leaseMs),
      ...lease.slots.map((s) => s.member),
    );
  }

  async release(lease: CapLease): Promise<void> {
    await Promise.all(lease.slots.map((s) => this.redis.zrem(s.key, s.member)));
  }
}

/** The jobs and batch items running now under the cap at `key` (see tenantCapKey): its live leases' weight. */
export async function runningUnderCap(redis: RedisConnection, key: string): Promise<number> {
  return Number(await redis.eval(COUNT, 1, key, String(Date.now())));
}
