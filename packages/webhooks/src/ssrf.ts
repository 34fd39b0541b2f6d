import dns from "node:dns";
import net from "node:net";
import ipaddr from "ipaddr.js";
import { InferlineError } from "@inferline/contracts";

/** A webhook target we refuse to call (wrong scheme, or an address inside the operator's network). */
export class UnsafeTargetError extends InferlineError {
  constructor(message: string) {
    super("webhook_target_refused", message, { status: 422 });
  }
}

export type HostLookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

export interface TargetOptions {
  /** Skip the address checks (tests and single-host setups that deliver to loopback). */
  allowPrivate?: boolean;
  /** DNS resolution; defaults to `dns.promises.lookup(host, {all: true})` (what fetch itself uses). */
  lookup?: HostLookup;
  /** How long DNS may take before the target is refused, in ms. Default DEFAULT_LOOKUP_TIMEOUT_MS. */
  lookupTimeoutMs?: number;
}

/**
 * getaddrinfo has no timeout of its own (and runs on libuv's small thread pool): a resolver that
 * never answers would hold a submit request or a delivery slot for as long as it likes.
 */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 2000;

const defaultLookup: HostLookup = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** `lookup(host)`, or an ETIMEOUT error after `timeoutMs` (the lookup itself cannot be canceled; its late answer is dropped). */
async function lookupWithin(
  lookup: HostLookup,
  host: string,
  timeoutMs: number,
): Promise<Array<{ address: string; family: number }>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no DNS answer within ${timeoutMs} ms`), { code: "ETIMEOUT" })),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([lookup(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Cloud instance-metadata endpoints, named explicitly even where a range below covers them. */
const METADATA_ADDRESSES = new Set(["169.254.169.254", "fd00:ec2::254"].map((ip) => normalize(ipaddr.parse(ip))));

function normalize(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  return addr.kind() === "ipv6" ? (addr as ipaddr.IPv6).toNormalizedString() : addr.toString();
}

/**
 * Ranges refused whatever ipaddr.js calls them: IANA's IPv4 and IPv6 Special-Purpose Address
 * Registries (entries not globally reachable, RFC 6890 and its updates), the multicast blocks, and
 * the deprecated IPv6 forms. Checked with Node's own parser (net.BlockList, inet_pton): ipaddr.js
 * reads `::a.b.c.d` as the IPv4-mapped `::ffff:a.b.c.d`, which would judge an IPv4-compatible
 * `::8.8.8.8` as the public 8.8.8.8. Every entry is refused by ipaddr.js too, except ::/96 and
 * 100:0:0:1::/64, which it calls unicast; ipaddr.js also refuses a few ranges that IANA marks
 * globally reachable (AS112 192.31.196.0/24, 192.175.48.0/24 and 2620:4f:8000::/48, AMT
 * 192.52.193.0/24): no webhook receiver lives there, so both verdicts stand. IPv4-mapped
 * ::ffff:0:0/96 is not listed: such an address is judged as the IPv4 address it carries.
 */
export const RESERVED_RANGES: ReadonlyArray<{ cidr: string; name: string }> = [
  { cidr: "0.0.0.0/8", name: '"this network", RFC 791' },
  { cidr: "10.0.0.0/8", name: "private, RFC 1918" },
  { cidr: "100.64.0.0/10", name: "carrier-grade NAT, RFC 6598" },
  { cidr: "127.0.0.0/8", name: "loopback" },
  { cidr: "169.254.0.0/16", name: "link-local" },
  { cidr: "172.16.0.0/12", name: "private, RFC 1918" },
  { cidr: "192.0.0.0/24", name: "IETF protocol assignments, RFC 6890" },
  { cidr: "192.0.2.0/24", name: "documentation, RFC 5737" },
  { cidr: "192.88.99.0/24", name: "6to4 relay anycast, deprecated by RFC 7526" },
  { cidr: "192.168.0.0/16", name: "private, RFC 1918" },
  { cidr: "198.18.0.0/15", name: "benchmarking, RFC 2544" },
  { cidr: "198.51.100.0/24", name: "documentation, RFC 5737" },
  { cidr: "203.0.113.0/24", name: "documentation, RFC 5737" },
  { cidr: "224.0.0.0/4", name: "multicast" },
  { cidr: "240.0.0.0/4", name: "reserved, RFC 1112" }, // with 255.255.255.255, limited broadcast
  { cidr: "::/96", name: "IPv4-compatible IPv6, deprecated by RFC 4291" }, // with :: and ::1
  { cidr: "::ffff:0:0:0/96", name: "IPv4-translated IPv6, RFC 2765" },
  { cidr: "64:ff9b::/96", name: "NAT64, RFC 6052" },
  { cidr: "64:ff9b:1::/48", name: "local-use IPv4/IPv6 translation, RFC 8215" },
  { cidr: "100::/64", name: "discard-only, RFC 6666" },
  { cidr: "100:0:0:1::/64", name: "dummy prefix, RFC 9780" },
  { cidr: "2001::/23", name: "IETF protocol assignments, RFC 2928" }, // Teredo, benchmarking, ORCHID, AMT, AS112
  { cidr: "2001:db8::/32", name: "documentation, RFC 3849" },
  { cidr: "2002::/16", name: "6to4, RFC 3056" },
  { cidr: "3fff::/20", name: "documentation, RFC 9637" },
  { cidr: "5f00::/16", name: "SRv6 SIDs, RFC 9602" },
  { cidr: "fc00::/7", name: "unique-local, RFC 4193" },
  { cidr: "fe80::/10", name: "link-local" },
  { cidr: "fec0::/10", name: "site-local, deprecated by RFC 3879" },
  { cidr: "ff00::/8", name: "multicast" },
];

/** One BlockList per range, so that a match can be named. */
const RESERVED_LISTS = RESERVED_RANGES.map(({ cidr, name }) => {
  const [network, prefix] = cidr.split("/") as [string, string];
  const family = net.isIPv6(network) ? "ipv6" : "ipv4";
  const list = new net.BlockList();
  list.addSubnet(network, Number(prefix), family);
  return { cidr, name, family, list };
});

/** IANA's IPv6 Address Space registry allocates only 2000::/3 to global unicast; the rest is reserved. */
const GLOBAL_UNICAST_V6 = new net.BlockList();
GLOBAL_UNICAST_V6.addSubnet("2000::", 3, "ipv6");

/**
 * Why `ip` may not be a webhook target, or null when it is a public unicast address. Refused:
 * anything ipaddr.js does not call `unicast` (loopback, RFC 1918 private, link-local,
 * unique-local fc00::/7, CGNAT 100.64/10, unspecified, multicast, broadcast, reserved and
 * documentation ranges, and the IPv6 forms that embed an IPv4 address, like NAT64 or 6to4),
 * anything in RESERVED_RANGES (IPv4-compatible ::/96 among them), and IPv6 outside 2000::/3. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as its IPv4 address.
 */
export function refusedAddressReason(ip: string): string | null {
  const bare = ip.replace(/%.*$/, ""); // a zone index (fe80::1%eth0) says nothing of the range
  const family = net.isIP(bare);
  if (family === 0) return `${ip} is not an IP address`;
  // WHATWG's IPv6 serialiser writes hex groups only, so ipaddr.js cannot misread ::a.b.c.d below.
  let addr: ipaddr.IPv4 | ipaddr.IPv6 =
    family === 6 ? ipaddr.IPv6.parse(new URL(`http://[${bare}]/`).hostname.slice(1, -1)) : ipaddr.IPv4.parse(bare);
  let mapped = "";
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
    mapped = "IPv4-mapped ";
  }
  const text = normalize(addr);
  if (METADATA_ADDRESSES.has(text)) return `${ip} is ${withArticle(`${mapped}cloud metadata`)} address`;
  const range = addr.range();
  if (range in COMMON_RANGE_NAMES) return `${ip} is ${withArticle(`${mapped}${COMMON_RANGE_NAMES[range]}`)} address`;
  const kind = addr.kind();
  const reserved = RESERVED_LISTS.find((r) => r.family === kind && r.list.check(text, kind));
  if (reserved) return `${ip} is ${mapped ? "an IPv4-mapped address " : ""}in ${reserved.cidr} (${reserved.name})`;
  if (range !== "unicast") return `${ip} is ${mapped ? "an IPv4-mapped address " : ""}in ipaddr.js's ${range} range`;
  if (kind === "ipv6" && !GLOBAL_UNICAST_V6.check(text, "ipv6"))
    return `${ip} is not a global unicast IPv6 address (outside 2000::/3)`;
  return null;
}

function withArticle(words: string): string {
  return `${/^[aeiou]/i.test(words) ? "an" : "a"} ${words}`;
}

/** ipaddr.js's names that read well in a message; its other ranges are named by RESERVED_RANGES. */
const COMMON_RANGE_NAMES: Record<string, string> = {
  loopback: "loopback",
  private: "private (RFC 1918)",
  linkLocal: "link-local",
  uniqueLocal: "unique-local",
  carrierGradeNat: "carrier-grade NAT",
  unspecified: "unspecified",
  multicast: "multicast",
  broadcast: "broadcast",
};

/**
 * Throws UnsafeTargetError unless `url` is http(s) and every address its host resolves to is a
 * public unicast address (one private answer is enough to refuse: DNS rebinding plays on mixed
 * answers). Returns the addresses checked. Nothing is connected to: only DNS is asked.
 */
export async function assertPublicTarget(url: string, options: TargetOptions = {}): Promise<string[]> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeTargetError("the webhook URL is not a valid URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UnsafeTargetError(`the webhook URL must use http or https, not ${parsed.protocol.replace(/:$/, "")}`);
  if (options.allowPrivate) return [];
  // WHATWG URL parsing already turned numeric forms like 2130706433 or 0x7f.1 into dotted quads.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: string[];
  if (net.isIP(host)) {
    addresses = [host];
  } else {
    const timeoutMs = options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    try {
      addresses = (await lookupWithin(options.lookup ?? defaultLookup, host, timeoutMs)).map((a) => a.address);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ETIMEOUT")
        throw new UnsafeTargetError(`the webhook host ${host} did not resolve within ${timeoutMs} ms`);
      throw new UnsafeTargetError(`the webhook host ${host} does not resolve (${code ?? (err as Error).message})`);
    }
    if (addresses.length === 0) throw new UnsafeTargetError(`the webhook host ${host} does not resolve`);
  }
  for (const address of addresses) {
    const reason = refusedAddressReason(address);
    if (reason)
      throw new UnsafeTargetError(
        net.isIP(host) ? `the webhook target ${reason}` : `the webhook host ${host} resolves to ${reason}`,
      );
  }
  return addresses;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net/tls connections that applies the same address check at connect time, on the
 * very addresses the socket is about to use. assertPublicTarget runs first for a readable error;
 * this closes the gap between its DNS answer and the connection's (DNS rebinding with a zero TTL).
 */
export function guardedLookup(hostname: string, options: dns.LookupOptions, done: LookupCallback): void {
  let settled = false;
  const callback: LookupCallback = (err, address, family) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(err, address, family);
  };
  const timer = setTimeout(
    () =>
      callback(
        Object.assign(
          new Error(`the webhook host ${hostname} did not resolve within ${DEFAULT_LOOKUP_TIMEOUT_MS} ms`),
          { code: "ETIMEOUT" },
        ),
        [],
      ),
    DEFAULT_LOOKUP_TIMEOUT_MS,
  );
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const { address } of addresses) {
      const reason = refusedAddressReason(address);
      if (reason)
        return callback(
          Object.assign(new Error(`refused: the webhook host ${hostname} resolves to ${reason}`), {
            code: "EWEBHOOKTARGET",
          }),
          [],
        );
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: "ENOTFOUND" }), []);
    callback(null, first.address, first.family);
  });
}
