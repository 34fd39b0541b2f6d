import http from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, fetch } from "undici";
import { describe, expect, it } from "vitest";
import ipaddr from "ipaddr.js";
import { ValidationError } from "@inferline/contracts";
import {
  assertPublicTarget,
  DEFAULT_LOOKUP_TIMEOUT_MS,
  guardedLookup,
  refusedAddressReason,
  RESERVED_RANGES,
  UnsafeTargetError,
  webhookTargetChecker,
  type HostLookup,
} from "../src/index.ts";

/** A resolver with fixed answers: the tests never ask real DNS for anything but `localhost`. */
function fakeDns(answers: Record<string, string[]>): HostLookup {
  return async (host) => {
    const list = answers[host];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
}

describe("refusedAddressReason", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.8.9.10", "loopback"],
    ["::1", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.5.4", "private"],
    ["192.168.1.1", "private"],
    ["169.254.1.1", "link-local"],
    ["fe80::1", "link-local"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["169.254.169.254", "cloud metadata"],
    ["fd00:ec2::254", "cloud metadata"],
    ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
    ["::ffff:10.1.2.3", "IPv4-mapped private"],
    ["::ffff:169.254.169.254", "IPv4-mapped cloud metadata"],
    ["64:ff9b::7f00:1", "NAT64"],
    ["2002:7f00:1::", "6to4"],
    // IPv4-compatible IPv6 (::/96, deprecated): ipaddr.js calls ::7f00:1 unicast and reads
    // ::8.8.8.8 as the IPv4-mapped ::ffff:8.8.8.8; both are refused as ::/96.
    ["::127.0.0.1", "::/96 (IPv4-compatible IPv6"],
    ["::7f00:1", "::/96 (IPv4-compatible IPv6"],
    ["::a9fe:a9fe", "::/96 (IPv4-compatible IPv6"],
    ["::8.8.8.8", "::/96 (IPv4-compatible IPv6"],
    ["::0.0.0.2", "::/96"],
    ["0.1.2.3", "unspecified"],
    ["192.0.0.9", "192.0.0.0/24 (IETF protocol assignments"],
    ["192.0.2.10", "192.0.2.0/24 (documentation"],
    ["198.19.255.1", "198.18.0.0/15 (benchmarking"],
    ["198.51.100.7", "198.51.100.0/24 (documentation"],
    ["203.0.113.99", "203.0.113.0/24 (documentation"],
    ["240.1.2.3", "240.0.0.0/4 (reserved"],
    ["192.88.99.1", "192.88.99.0/24"],
    ["64:ff9b:1::a00:1", "64:ff9b:1::/48 (local-use IPv4/IPv6 translation"],
    ["100::1", "100::/64 (discard-only"],
    ["100:0:0:1::7", "100:0:0:1::/64 (dummy prefix"],
    ["2001::1", "2001::/23 (IETF protocol assignments"], // Teredo
    ["2001:1ff::1", "2001::/23"],
    ["2001:db8::1", "2001:db8::/32 (documentation"],
    ["3fff::1", "3fff::/20 (documentation"],
    ["5f00::1", "5f00::/16 (SRv6"],
    ["fec0::1", "fec0::/10 (site-local"],
    ["::ffff:0:a00:1", "::ffff:0:0:0/96 (IPv4-translated"],
    ["::ffff:192.0.2.1", "IPv4-mapped address in 192.0.2.0/24"],
    ["4000::1", "outside 2000::/3"],
    ["fe80::1%eth0", "link-local"],
  ])("refuses %s (%s)", (ip, kind) => {
    expect(refusedAddressReason(ip)).toContain(kind);
  });

  it.each([
    "93.184.215.14",
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2001:200::1",
    "2a00:1450:4001::1",
    "1.0.0.1",
    "100.63.255.255",
    "100.128.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.1",
  ])("allows public %s", (ip) => {
    expect(refusedAddressReason(ip)).toBeNull();
  });

  it("refuses every address of every RESERVED_RANGES entry, first and last", () => {
    for (const { cidr } of RESERVED_RANGES) {
      const [network, bits] = ipaddr.parseCIDR(cidr);
      const first = ipaddr.parse(network.toString());
      const bytes = first.toByteArray();
      const hostBits = bytes.length * 8 - bits;
      for (let i = bytes.length - 1, left = hostBits; left > 0; i--, left -= 8)
        bytes[i] = bytes[i]! | (0xff >> Math.max(0, 8 - left));
      const last = ipaddr.fromByteArray(bytes);
      for (const addr of [first, last])
        expect(refusedAddressReason(addr.toString()), `${addr.toString()} in ${cidr}`).not.toBeNull();
    }
  });

  it("agrees with ipaddr.js: it calls every listed range non-unicast too, except ::/96 and 100:0:0:1::/64", () => {
    // An address inside each range (past ::, ::1 and 0.0.0.0, which ipaddr.js names on their own).
    const inside = (cidr: string) => {
      const bytes = ipaddr.parseCIDR(cidr)[0].toByteArray();
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 2;
      return ipaddr.fromByteArray(bytes);
    };
    expect(RESERVED_RANGES.filter(({ cidr }) => inside(cidr).range() === "unicast").map((r) => r.cidr)).toEqual([
      "::/96",
      "100:0:0:1::/64",
    ]);
  });
});

describe("assertPublicTarget", () => {
  const lookup = fakeDns({
    "hooks.example.com": ["93.184.215.14"],
    "mixed.example.com": ["93.184.215.14", "10.0.0.7"],
    "v6.example.com": ["2606:4700:4700::1111"],
    "rebind.example.com": ["::ffff:127.0.0.1"],
  });

  it("accepts http and https URLs whose host resolves only to public addresses", async () => {
    await expect(assertPublicTarget("https://hooks.example.com/inferline", { lookup })).resolves.toEqual([
      "93.184.215.14",
    ]);
    await expect(assertPublicTarget("http://v6.example.com:8080/x", { lookup })).resolves.toEqual([
      "2606:4700:4700::1111",
    ]);
    await expect(assertPublicTarget("http://8.8.8.8/x", { lookup })).resolves.toEqual(["8.8.8.8"]);
  });

  it.each([
    ["http://127.0.0.1:8080/hook", /loopback/],
    ["http://10.0.0.1/hook", /private/],
    ["http://169.254.169.254/latest/meta-data", /metadata/],
    ["http://[::1]:3000/hook", /loopback/],
    ["http://[fd00:ec2::254]/", /metadata/],
    ["http://[::ffff:7f00:1]/", /IPv4-mapped loopback/],
    ["http://2130706433/", /loopback/], // 127.0.0.1 as one decimal number
    ["http://0x7f.1/", /loopback/],
    ["http://0/", /unspecified/],
    ["http://100.64.1.1/", /carrier-grade NAT/],
    ["http://[::127.0.0.1]/", /::7f00:1 is in ::\/96 \(IPv4-compatible IPv6/], // WHATWG URL writes it as ::7f00:1
    ["http://[::7f00:1]:8080/", /::\/96/],
    ["http://[::8.8.8.8]/", /::\/96/],
    ["http://[64:ff9b::a9fe:a9fe]/", /NAT64/],
    ["http://192.0.2.1/", /documentation/],
  ])("refuses %s before connecting", async (url, reason) => {
    await expect(assertPublicTarget(url, { lookup })).rejects.toThrow(reason);
  });

  it("refuses a name resolving to an IPv4-compatible address (glibc writes ::7f00:1 as ::127.0.0.1)", async () => {
    const compat = fakeDns({ "compat.example.com": ["::127.0.0.1"], "compat-public.example.com": ["::8.8.8.8"] });
    await expect(assertPublicTarget("https://compat.example.com/", { lookup: compat })).rejects.toThrow(
      /compat\.example\.com resolves to ::127\.0\.0\.1 is in ::\/96/,
    );
    await expect(assertPublicTarget("https://compat-public.example.com/", { lookup: compat })).rejects.toThrow(
      /::\/96/,
    );
  });

  it("refuses a name when any of its addresses is private (DNS rebinding plays on mixed answers)", async () => {
    await expect(assertPublicTarget("https://mixed.example.com/", { lookup })).rejects.toThrow(
      /mixed\.example\.com resolves to 10\.0\.0\.7 is a private/,
    );
    await expect(assertPublicTarget("https://rebind.example.com/", { lookup })).rejects.toThrow(/IPv4-mapped loopback/);
  });

  it("refuses localhost through the real resolver", async () => {
    await expect(assertPublicTarget("http://localhost:9/hook")).rejects.toThrow(/localhost resolves to .*loopback/);
  });

  it("refuses a name that does not resolve, and schemes other than http(s)", async () => {
    await expect(assertPublicTarget("https://nowhere.example.com/", { lookup })).rejects.toThrow(/does not resolve/);
    await expect(assertPublicTarget("ftp://hooks.example.com/", { lookup })).rejects.toThrow(/http or https/);
    await expect(assertPublicTarget("file:///etc/passwd", { lookup })).rejects.toThrow(/http or https/);
    await expect(assertPublicTarget("not a url", { lookup })).rejects.toBeInstanceOf(UnsafeTargetError);
  });

  it("allows private targets when the operator switch is on, but still only http(s)", async () => {
    await expect(assertPublicTarget("http://127.0.0.1:8080/", { allowPrivate: true, lookup })).resolves.toEqual([]);
    await expect(assertPublicTarget("gopher://127.0.0.1/", { allowPrivate: true, lookup })).rejects.toThrow(
      /http or https/,
    );
  });
});

describe("DNS timeout", () => {
  const never: HostLookup = () => new Promise(() => {});

  it("refuses a host whose lookup does not answer in time", async () => {
    expect(DEFAULT_LOOKUP_TIMEOUT_MS).toBe(2000);
    const err = await assertPublicTarget("https://slow.example.com/hook", { lookup: never, lookupTimeoutMs: 50 }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(UnsafeTargetError);
    expect((err as Error).message).toBe("the webhook host slow.example.com did not resolve within 50 ms");
  });

  it("is a 422 naming /webhook/url at submit", async () => {
    const check = webhookTargetChecker({ allowPrivate: false, lookup: never, lookupTimeoutMs: 50 });
    const err = await check("https://slow.example.com/hook").catch((e: Error) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).status).toBe(422);
    expect((err as ValidationError).errors).toEqual([
      { path: "/webhook/url", message: "the webhook host slow.example.com did not resolve within 50 ms" },
    ]);
  });

  it("does not delay an answer that comes in time", async () => {
    const slowish: HostLookup = () =>
      new Promise((resolve) => setTimeout(() => resolve([{ address: "93.184.215.14", family: 4 }]), 10));
    await expect(
      assertPublicTarget("https://ok.example.com/", { lookup: slowish, lookupTimeoutMs: 1000 }),
    ).resolves.toEqual(["93.184.215.14"]);
  });
});

describe("guardedLookup (connect-time check)", () => {
  it("fails the connection to a name resolving to loopback before any socket reaches the server", async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end("ok"));
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const agent = new Agent({ connect: { lookup: guardedLookup } });
    try {
      const err = await fetch(`http://localhost:${port}/`, { dispatcher: agent }).then(
        () => undefined,
        (e: Error & { cause?: Error & { code?: string } }) => e,
      );
      expect(err?.cause?.code).toBe("EWEBHOOKTARGET");
      expect(err?.cause?.message).toMatch(/localhost resolves to .*loopback/);
      expect(connections).toBe(0);
      // The same server is reachable without the guard: the refusal above was the lookup's.
      expect((await fetch(`http://localhost:${port}/`, { dispatcher: new Agent() })).status).toBe(200);
    } finally {
      await agent.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
