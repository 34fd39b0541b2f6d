import { describe, expect, it } from "vitest";
import { clientAddress } from "../src/middleware/auth.ts";

describe("clientAddress", () => {
  it("keys IPv4 as is, IPv4-mapped IPv6 as IPv4, and IPv6 by its /64", () => {
    const of = (ip: string) => clientAddress({ ip, socket: {} } as Parameters<typeof clientAddress>[0]);
    expect(of("203.0.113.7")).toBe("203.0.113.7");
    expect(of("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(of("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    expect(of("2001:db8:1:2:ffff::1")).toBe("2001:db8:1:2::/64");
    expect(of("2001:0db8::1")).toBe("2001:db8:0:0::/64");
    expect(of("::1")).toBe("0:0:0:0::/64");
    expect(of("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
  });
});
