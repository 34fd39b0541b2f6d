import type { Job as QueueEntry } from "bullmq";
import { describe, expect, it } from "vitest";
import type { TenantCap } from "@inferline/db";
import type { DispatchPayload, TenantLeases } from "@inferline/queue";
import { TenantCaps } from "../src/tenant-caps.ts";

// The caps' cache on the claim path (the leases themselves are tested against Redis in
// e2e/tenant-caps.test.ts): a worker reads them once before its first entry, and later reads run
// beside the entries instead of in front of them.

const ENTRY = {
  queueName: "p:infer:m:1",
  id: "e1",
  data: { jobIds: ["j1"], version: "1" },
} as unknown as QueueEntry<DispatchPayload>;

function caps(readCaps: () => Promise<TenantCap[]>) {
  const warned: string[] = [];
  const tenantCaps = new TenantCaps(
    {
      readCaps,
      tenantOf: async () => null,
      leases: {} as TenantLeases,
      onWait: () => {},
      logger: { warn: (_obj, msg) => warned.push(msg) },
    },
    { prefix: "p", cacheMs: 0, leaseMs: 1000, waitMs: 10 },
  );
  return { tenantCaps, warned };
}

describe("TenantCaps: reading the caps", () => {
  it("waits for the first read, and not for a later one that hangs", async () => {
    let reads = 0;
    let release: (() => void) | undefined;
    const { tenantCaps } = caps(async () => {
      reads++;
      if (reads === 1) return [];
      await new Promise<void>((resolve) => (release = resolve));
      return [];
    });
    expect(await tenantCaps.admit(ENTRY, undefined)).toBeUndefined();
    // Stale at once (cacheMs 0): this admit starts a second read that hangs, and answers without it.
    expect(await tenantCaps.admit(ENTRY, undefined)).toBeUndefined();
    expect(reads).toBe(2);
    // Callers meanwhile share that one read.
    await tenantCaps.admit(ENTRY, undefined);
    expect(reads).toBe(2);
    release!();
  });

  it("keeps the caps last read when a read fails, and says so", async () => {
    let fail = false;
    const { tenantCaps, warned } = caps(async () => {
      if (fail) throw new Error("PostgreSQL is away");
      return [];
    });
    await tenantCaps.admit(ENTRY, undefined);
    fail = true;
    await tenantCaps.admit(ENTRY, undefined);
    await expect.poll(() => warned.length).toBe(1);
    expect(warned[0]).toContain("the last ones read stay in force");
  });
});
