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
}

const defaultLookup: HostLookup = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** Cloud instance-metadata endpoints, named explicitly even where a range below covers them. */
const METADATA_ADDRESSES = new Set(["169.254.169.254", "fd00:ec2::254"].map((ip) => normalize(ipaddr.parse(ip))));

function normalize(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  return addr.kind() === "ipv6" ? (addr as ipaddr.IPv6).toNormalizedString() : addr.toString();
}

/**
 * Why `ip` may not be a webhook target, or null when it is a public unicast address. Range
 * classification comes from ipaddr.js: anything it does not call `unicast` is refused (loopback,
 * RFC 1918 private, link-local, unique-local fc00::/7, CGNAT 100.64/10, unspecified, multicast,
 * broadcast, reserved and documentation ranges, and the IPv6 forms that embed an IPv4 address,
 * like NAT64 or 6to4). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as its IPv4 address.
 */
export function refusedAddressReason(ip: string): string | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(ip);
  } catch {
    return `${ip} is not an IP address`;
  }
  let mapped = "";
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
    mapped = "IPv4-mapped ";
  }
  if (METADATA_ADDRESSES.has(normalize(addr))) return `${ip} is a ${mapped}cloud metadata address`;
  const range = addr.range();
  return range === "unicast" ? null : `${ip} is a ${mapped}${RANGE_NAMES[range] ?? range} address`;
}

const RANGE_NAMES: Record<string, string> = {
  loopback: "loopback",
  private: "private (RFC 1918)",
  linkLocal: "link-local",
  uniqueLocal: "unique-local",
  carrierGradeNat: "carrier-grade NAT",
  unspecified: "unspecified",
  multicast: "multicast",
  broadcast: "broadcast",
  reserved: "reserved",
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
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UnsafeTargetError(`the webhook URL must use http or https, not ${parsed.protocol.replace(/:$/, "")}`);
  if (options.allowPrivate) return [];
  // WHATWG URL parsing already turned numeric forms like 2130706433 or 0x7f.1 into dotted quads.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: string[];
  if (net.isIP(host)) {
    addresses = [host];
  } else {
    try {
      addresses = (await (options.lookup ?? defaultLookup)(host)).map((a) => a.address);
    } catch (err) {
      throw new UnsafeTargetError(`the webhook host ${host} does not resolve (${(err as { code?: string }).code ?? (err as Error).message})`);
    }
    if (addresses.length === 0) throw new UnsafeTargetError(`the webhook host ${host} does not resolve`);
  }
  for (const address of addresses) {
    const reason = refusedAddressReason(address);
    if (reason) throw new UnsafeTargetError(net.isIP(host) ? `the webhook target ${reason}` : `the webhook host ${host} resolves to ${reason}`);
  }
  return addresses;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls connections that applies the same address check at connect time, on the
 * very addresses the socket is about to use. assertPublicTarget runs first for a readable error;
 * this closes the gap between its DNS answer and the connection's (DNS rebinding with a zero TTL).
 */
export function guardedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const { address } of addresses) {
      const reason = refusedAddressReason(address);
      if (reason) return callback(Object.assign(new Error(`refused: the webhook host ${hostname} resolves to ${reason}`), { code: "EWEBHOOKTARGET" }), []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: "ENOTFOUND" }), []);
    callback(null, first.address, first.family);
  });
}
