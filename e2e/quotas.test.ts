import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantStore } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, irisJob, sleepUntil, type ApiClient } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Per-tenant quotas of queued work: DEFAULT_TENANT_MAX_QUEUED for tenants without a maxQueued of
// their own. The worker is stopped, so what is submitted stays queued until a test starts it.
const DEFAULT_QUOTA = 5;

let stack: TestStack;
let admin: Database;
let tenants: TenantStore;
beforeAll(async () => {
  stack = await startStack({ worker: false, api: { DEFAULT_TENANT_MAX_QUEUED: String(DEFAULT_QUOTA) } });
  admin = new Database(stack.db.url, { poolSize: 1 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await admin?.close();
  await stack?.close();
});

/** A client of a new tenant, with settings set before its key's first request (the API reads them at authentication). */
async function tenant(name: string, maxQueued?: number): Promise<ApiClient> {
  const { key } = await tenants.createKey(name);
  if (maxQueued !== undefined) await tenants.updateSettings(name, { maxQueued });
  return stack.alpha.withKey(key);
}

const batchOf = (n: number) => ({
  model: "iris",
  items: Array.from({ length: n }, () => ({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })),
});

describe("per-tenant quotas", () => {
  it("refuses a tenant's submits past DEFAULT_TENANT_MAX_QUEUED with 429 quota_exceeded naming the quota, with Retry-After; concurrent submits cannot overshoot it; other tenants go on", async () => {
    const [capped, other] = [await tenant("capped"), await tenant("unhindered")];
    const answers = await Promise.all(Array.from({ length: 12 }, () => capped.post("/v1/jobs", irisJob())));
    expect(answers.filter((a) => a.status === 202)).toHaveLength(DEFAULT_QUOTA);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(12 - DEFAULT_QUOTA);
    expect(refused[0]!.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(refused[0]!.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(refused[0]!.body).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(refused[0]!.body.detail).toContain(`quota (maxQueued) is ${DEFAULT_QUOTA}`);

    expect((await other.post("/v1/jobs", irisJob())).status).toBe(202);
    // Exactly the quota's worth was stored.
    const { rows } = await admin.pool.query<{ n: number }>(
      `select count(*)::int as n from jobs j join tenants t on t.id = j."tenantId" where t.name = 'capped'`,
    );
    expect(rows[0]!.n).toBe(DEFAULT_QUOTA);
  });

  it("a tenant's own maxQueued replaces the default; a batch that would pass it creates nothing", async () => {
    const roomy = await tenant("roomy", 40);
    const big = await roomy.post("/v1/batches", batchOf(41));
    expect(big.status).toBe(429);
    expect(big.body.code).toBe("quota_exceeded");
    expect(big.body.detail).toContain("quota (maxQueued) is 40");
    expect(big.body.detail).toContain("41 more would exceed it");
    const fits = await roomy.post("/v1/batches", batchOf(30));
    expect(fits.status).toBe(202);
    // 30 queued: 10 more jobs fit, the 11th does not.
    const jobs = await Promise.all(Array.from({ length: 11 }, () => roomy.post("/v1/jobs", irisJob())));
    expect(jobs.filter((j) => j.status === 202)).toHaveLength(10);
    const ndjson = await roomy.request("POST", "/v1/batches?model=iris", {
      body: `${JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] })}\n`,
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(ndjson.status).toBe(429);
    const { rows } = await admin.pool.query<{ n: number }>(
      `select count(*)::int as n from batches b join tenants t on t.id = b."tenantId" where t.name = 'roomy'`,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it("once a worker has started the tenant's work, it may queue more", async () => {
    const full = await tenant("full", 2);
    await Promise.all([full.post("/v1/jobs", irisJob()), full.post("/v1/jobs", irisJob())]);
    expect((await full.post("/v1/jobs", irisJob())).status).toBe(429);
    await stack.startWorker();
    try {
      // The API reads the tenant's queued work again at most a second after its last reading.
      const accepted = await sleepUntil(
        async () => ((await full.post("/v1/jobs", irisJob())).status === 202 ? true : undefined),
        { timeoutMs: 15_000, message: "still refused" },
      );
      expect(accepted).toBe(true);
    } finally {
      await stack.stopWorker();
    }
  });
});
