import http from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, fetch } from "undici";
import { describe, expect, it } from "vitest";
import { assertPublicTarget, guardedLookup, refusedAddressReason, UnsafeTargetError, type HostLookup } from "../src/index.ts";

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
    ["64:ff9b::7f00:1", "rfc6052"],
    ["2002:7f00:1::", "6to4"],
  ])("refuses %s (%s)", (ip, kind) => {
    expect(refusedAddressReason(ip)).toContain(kind);
  });

  it.each(["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])("allows public %s", (ip) => {
    expect(refusedAddressReason(ip)).toBeNull();
  });
});

describe("assertPublicTarget", () => {
  const lookup = fakeDns({ "hooks.example.com": ["93.184.215.14"], "mixed.example.com": ["93.184.215.14", "10.0.0.7"], "v6.example.com": ["2606:4700:4700::1111"], "rebind.example.com": ["::ffff:127.0.0.1"] });

  it("accepts http and https URLs whose host resolves only to public addresses", async () => {
    await expect(assertPublicTarget("https://hooks.example.com/inferline", { lookup })).resolves.toEqual(["93.184.215.14"]);
    await expect(assertPublicTarget("http://v6.example.com:8080/x", { lookup })).resolves.toEqual(["2606:4700:4700::1111"]);
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
  ])("refuses %s before connecting", async (url, reason) => {
    await expect(assertPublicTarget(url, { lookup })).rejects.toThrow(reason);
  });

  it("refuses a name when any of its addresses is private (DNS rebinding plays on mixed answers)", async () => {
    await expect(assertPublicTarget("https://mixed.example.com/", { lookup })).rejects.toThrow(/mixed\.example\.com resolves to 10\.0\.0\.7 is a private/);
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
    await expect(assertPublicTarget("gopher://127.0.0.1/", { allowPrivate: true, lookup })).rejects.toThrow(/http or https/);
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
