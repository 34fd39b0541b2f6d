import { isIPv6 } from "node:net";
import type { Request, RequestHandler, Response } from "express";
import { LRUCache } from "lru-cache";
import { hashApiKey, isWellFormedApiKey, type KeyLookup, type Tenant } from "@inferline/db";
import { sendProblem } from "../problem.ts";
import { WindowCounter } from "./rate-limit.ts";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `authenticate` on every /v1 route, with the tenant's fair-share weight and quota as of its key's last lookup (at most ttlMs ago). */
      tenant?: Tenant;
    }
  }
}

export interface ApiKeyAuthOptions {
  /** Most keys each of the two caches (valid keys, refused keys) holds (AUTH_CACHE_SIZE). */
  cacheSize: number;
  /** How long a lookup's answer is trusted without asking PostgreSQL again. Default 30 s. */
  ttlMs?: number;
  /** Lookups a client address may cause per second (missing, malformed or uncached keys); 0 disables (AUTH_RATE_LIMIT_PER_IP). */
  perAddressPerSecond: number;
  /** Client addresses the per-address limiter tracks at once. Default 10,000. */
  maxAddresses?: number;
}

/** A key PostgreSQL confirmed, as of `verifiedAt` and the cache generation it was read in. */
interface Verified {
  tenant: Tenant;
  verifiedAt: number;
  generation: number;
}

/** A lookup in flight; `stale` is set when a revocation of its key arrives before it answers. */
interface Lookup {
  promise: Promise<Tenant | null>;
  stale: boolean;
}

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Bearer-key authentication with a cache, so the hot submit path costs no database round trip.
 *
 * - Valid keys live in a bounded LRU. Only keys PostgreSQL confirmed get in, so a client spraying
 *   random keys cannot push valid keys out. An answer is trusted for `ttlMs`; revocations
 *   announced over Redis evict at once (`evict`), and after the subscription drops every answer
 *   is checked again (`invalidateAll`), since announcements may have been lost meanwhile.
 * - Refused keys live in a second, separate LRU, so a client repeating a bad or revoked key costs
 *   one lookup per TTL; a sprayer only churns this one, and the per-address budget bounds it.
 * - A request that would cause a lookup (no key, a malformed one, or one in neither cache)
 *   counts against its client address's budget first; past it, 429 without touching PostgreSQL.
 *   Re-checking a key the valid cache already holds (TTL passed, or after a reconnect) is not
 *   counted: that set is bounded and was earned with real keys, and charging it would let a
 *   sprayer behind the same address (a NAT, a proxy) lock out every real key every 30 s.
 * - Concurrent requests with one uncached key share one lookup and are counted once.
 */
export class ApiKeyAuth {
  private readonly valid: LRUCache<string, Verified>;
  private readonly refused: LRUCache<string, number>;
  private readonly inFlight = new Map<string, Lookup>();
  /**
   * The last well-formed header each connection sent, with its key's hash: a keep-alive client
   * sends the same key on every request, so this spares each of them a SHA-256 on the hottest
   * route. Only the parsing is remembered: validity, TTL and revocation
   * are still decided by the caches below on every request. Held as long as the connection.
   */
  private readonly lastOnSocket = new WeakMap<object, { header: string; key: string; hash: string }>();
  private readonly perAddress: WindowCounter | null;
  private readonly ttlMs: number;
  private generation = 0;

  constructor(
    private readonly tenants: KeyLookup,
    options: ApiKeyAuthOptions,
  ) {
    const max = options.cacheSize;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.valid = new LRUCache({ max });
    this.refused = new LRUCache({ max });
    const perSecond = options.perAddressPerSecond;
    this.perAddress = perSecond > 0 ? new WindowCounter(perSecond, options.maxAddresses ?? 10_000) : null;
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      const header = req.headers.authorization ?? "";
      let parsed = this.lastOnSocket.get(req.socket);
      if (parsed?.header !== header) {
        const match = BEARER.exec(header);
        if (!match)
          return this.refuse(req, res, "missing_api_key", "send your API key as `Authorization: Bearer <key>`");
        const key = match[1]!;
        if (!isWellFormedApiKey(key))
          return this.refuse(req, res, "invalid_api_key", "the API key is unknown or revoked");
        parsed = { header, key, hash: hashApiKey(key) };
        this.lastOnSocket.set(req.socket, parsed);
      }
      const { key, hash } = parsed;
      const known = this.valid.get(hash);
      if (known && known.generation === this.generation && Date.now() - known.verifiedAt < this.ttlMs) {
        req.tenant = known.tenant;
        return next();
      }
      if (!known && !this.inFlight.has(hash)) {
        const until = this.refused.get(hash);
        if (until !== undefined && until > Date.now())
          return void sendProblem(res, 401, "invalid_api_key", "the API key is unknown or revoked");
        if (this.overBudget(req, res)) return;
      }
      return this.lookup(hash, key).then((tenant) => {
        if (!tenant) return sendProblem(res, 401, "invalid_api_key", "the API key is unknown or revoked");
        req.tenant = tenant;
        next();
      }, next);
    };
  }

  /** Forgets revoked keys (by SHA-256) at once, including answers still on their way. */
  evict(keyHashes: string[]): void {
    for (const hash of keyHashes) {
      this.valid.delete(hash);
      const pending = this.inFlight.get(hash);
      if (pending) pending.stale = true;
    }
  }

  /** Every valid key must be confirmed by PostgreSQL again before its next use. */
  invalidateAll(): void {
    this.generation++;
    for (const pending of this.inFlight.values()) pending.stale = true;
  }

  /** Sizes of the caches and the limiter, for tests and diagnostics. */
  stats(): { validKeys: number; refusedKeys: number; addresses: number; lookupsInFlight: number; cacheSize: number } {
    return {
      validKeys: this.valid.size,
      refusedKeys: this.refused.size,
      addresses: this.perAddress?.size ?? 0,
      lookupsInFlight: this.inFlight.size,
      cacheSize: this.valid.max,
    };
  }

  private refuse(req: Request, res: Response, code: string, detail: string): void {
    if (!this.overBudget(req, res)) sendProblem(res, 401, code, detail);
  }

  /** Counts one lookup against the client's address; answers 429 and returns true past the budget. */
  private overBudget(req: Request, res: Response): boolean {
    if (!this.perAddress) return false;
    const retryAfter = this.perAddress.take(clientAddress(req));
    if (retryAfter === 0) return false;
    res.setHeader("Retry-After", String(retryAfter));
    sendProblem(
      res,
      429,
      "auth_rate_limited",
      `more than ${this.perAddress.perSecond} requests per second from this address without a known API key`,
    );
    return true;
  }

  private lookup(hash: string, key: string): Promise<Tenant | null> {
    const running = this.inFlight.get(hash);
    if (running) return running.promise;
    const generation = this.generation;
    const pending: Lookup = { promise: Promise.resolve(null), stale: false };
    pending.promise = this.tenants
      .authenticate(key)
      .then((tenant) => {
        if (!pending.stale) this.remember(hash, tenant, generation);
        return tenant;
      })
      .finally(() => this.inFlight.delete(hash));
    this.inFlight.set(hash, pending);
    return pending.promise;
  }

  private remember(hash: string, tenant: Tenant | null, generation: number): void {
    const now = Date.now();
    if (tenant) {
      this.valid.set(hash, { tenant, verifiedAt: now, generation });
      this.refused.delete(hash);
    } else {
      // Keys are unguessable and a revocation is final, so a refusal stays true: one TTL is only
      // there to bound how long a refused key occupies the cache.
      this.valid.delete(hash);
      this.refused.set(hash, now + this.ttlMs);
    }
  }
}

/**
 * The budget's key for a request: its address, with IPv4-mapped IPv6 as IPv4 and IPv6 grouped by
 * /64 (one host or customer usually holds a whole /64, so per-address budgets would be endless).
 */
export function clientAddress(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? "unknown";
  if (ip.startsWith("::ffff:") && ip.includes(".")) return ip.slice(7);
  return isIPv6(ip) ? ipv6Slash64(ip) : ip;
}

function ipv6Slash64(ip: string): string {
  const [head = "", tail] = ip.split("%")[0]!.split("::");
  const left = head ? head.split(":") : [];
  // An embedded IPv4 tail fills two groups; it never reaches the first four but sets the gap.
  const right = tail ? tail.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g])) : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}
