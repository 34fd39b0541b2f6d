import crypto from "node:crypto";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, JobStore, TenantCapStore, TenantStore } from "@inferline/db";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");

let db: TestDatabase;
let admin: Database;
let tenants: TenantStore;
beforeAll(async () => {
  db = await createTestDatabase();
  admin = new Database(db.url, { poolSize: 1 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await admin?.close();
  await db?.drop();
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args, "--database-url", db.url], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** The one record a table of one row shows, by header. */
function fields(stdout: string): Record<string, string> {
  const [header, row] = stdout.trimEnd().split("\n");
  const starts = [...header!.matchAll(/\S+(?: \S+)*/g)].map((m) => m.index);
  return Object.fromEntries(
    starts.map((start, i) => [header!.slice(start, starts[i + 1]).trim(), row!.slice(start, starts[i + 1]).trim()]),
  );
}

describe("inferline tenants", () => {
  it("set changes the weight and quota it is given and prints the tenant; show prints it with its queued work", async () => {
    const { tenant, key } = await tenants.createKey("acme");
    const set = await cli(["tenants", "set", "acme", "--max-queued", "5000", "--weight", "3"]);
    expect(set.code).toBe(0);
    expect(fields(set.stdout)).toEqual({
      NAME: "acme",
      ID: tenant.id,
      WEIGHT: "3",
      "MAX QUEUED": "5000",
      "MAX RUNNING": "none",
      QUEUED: "0",
    });
    // What the API reads at authentication.
    expect(await tenants.authenticate(key)).toMatchObject({ weight: 3, maxQueued: 5000 });

    // Two queued jobs of acme (one queue entry) show in `queued`.
    const dispatchId = crypto.randomUUID();
    const job = (id: string) => ({
      id,
      tenantId: tenant.id,
      model: "iris",
      version: "1",
      priority: "normal" as const,
      inputs: [],
      requestedOutputs: [],
      metadata: {},
      webhook: null,
      idempotencyKey: null,
      requestHash: null,
      dispatchId,
      queueDeadline: null,
      cancelAt: null,
      createdAt: new Date(),
    });
    await new JobStore(admin.pool, admin.prisma).insertMany([job(crypto.randomUUID()), job(crypto.randomUUID())]);
    const shown = await cli(["tenants", "show", "acme"]);
    expect(shown.code).toBe(0);
    expect(fields(shown.stdout)).toMatchObject({ WEIGHT: "3", "MAX QUEUED": "5000", QUEUED: "2" });
    const json = await cli(["tenants", "show", "acme", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      name: "acme",
      id: tenant.id,
      weight: 3,
      maxQueued: 5000,
      maxRunning: {},
      queued: 2,
    });
  });

  it("--max-queued 0 or none clears the quota and leaves the weight; --weight alone leaves the quota", async () => {
    await tenants.createKey("clearing");
    await tenants.updateSettings("clearing", { weight: 2, maxQueued: 10 });
    for (const clear of ["0", "none"]) {
      await tenants.updateSettings("clearing", { maxQueued: 10 });
      const run = await cli(["tenants", "set", "clearing", "--max-queued", clear]);
      expect(run.code).toBe(0);
      expect(fields(run.stdout)).toMatchObject({ WEIGHT: "2", "MAX QUEUED": "default" });
    }
    await cli(["tenants", "set", "clearing", "--max-queued", "7"]);
    expect(fields((await cli(["tenants", "set", "clearing", "--weight", "5"])).stdout)).toMatchObject({
      WEIGHT: "5",
      "MAX QUEUED": "7",
    });
  });

  it("--max-running sets a cap over every model or, with --model, on one; 0 or none clears it; show prints the caps; other settings stay", async () => {
    const { tenant } = await tenants.createKey("capped");
    await tenants.updateSettings("capped", { weight: 2, maxQueued: 9 });
    const all = await cli(["tenants", "set", "capped", "--max-running", "4"]);
    expect(all.code).toBe(0);
    expect(fields(all.stdout)).toMatchObject({ WEIGHT: "2", "MAX QUEUED": "9", "MAX RUNNING": "4 all models" });
    const iris = await cli(["tenants", "set", "capped", "--max-running", "1", "--model", "iris"]);
    expect(fields(iris.stdout)).toMatchObject({ "MAX RUNNING": "4 all models, iris 1" });
    // What workers read.
    const caps = new TenantCapStore(admin.pool);
    expect(await caps.all()).toEqual(
      expect.arrayContaining([
        { tenantId: tenant.id, model: "*", maxRunning: 4 },
        { tenantId: tenant.id, model: "iris", maxRunning: 1 },
      ]),
    );
    const json = await cli(["tenants", "show", "capped", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ weight: 2, maxQueued: 9, maxRunning: { "*": 4, iris: 1 } });
    // A second set of the same scope replaces it; clearing one scope leaves the other.
    expect(
      fields((await cli(["tenants", "set", "capped", "--max-running", "2", "--model", "iris"])).stdout),
    ).toMatchObject({ "MAX RUNNING": "4 all models, iris 2" });
    expect(fields((await cli(["tenants", "set", "capped", "--max-running", "none"])).stdout)).toMatchObject({
      "MAX RUNNING": "iris 2",
    });
    expect(
      fields((await cli(["tenants", "set", "capped", "--max-running", "0", "--model", "iris"])).stdout),
    ).toMatchObject({ "MAX RUNNING": "none", WEIGHT: "2" });
    expect(await caps.ofTenant(tenant.id)).toEqual([]);
    expect(fields((await cli(["tenants", "show", "capped"])).stdout)).toMatchObject({ "MAX RUNNING": "none" });
  });

  it("refuses bad values, an unknown tenant and nothing to set, with exit 2 and nothing changed", async () => {
    await tenants.createKey("strict");
    const runs = await Promise.all([
      cli(["tenants", "set", "strict", "--weight", "0"]),
      cli(["tenants", "set", "strict", "--weight", "1.5"]),
      cli(["tenants", "set", "strict", "--max-queued", "-3"]),
      cli(["tenants", "set", "strict", "--max-queued", "lots"]),
      cli(["tenants", "set", "strict"]),
      cli(["tenants", "set", "nobody", "--weight", "2"]),
      cli(["tenants", "show", "nobody"]),
      cli(["tenants", "set", "strict", "--max-running", "-1"]),
      cli(["tenants", "set", "strict", "--model", "iris"]),
      cli(["tenants", "set", "nobody", "--max-running", "2"]),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(runs[7].stderr).toContain("0 or `none` clears the cap");
    expect(runs[8].stderr).toContain("--model goes with --max-running");
    expect(runs[9].stderr).toContain('no tenant named "nobody"');
    expect(runs[0].stderr).toContain("expected a whole number from 1 to 1000");
    expect(runs[3].stderr).toContain("0 or `none` clears the quota");
    expect(runs[4].stderr).toContain("nothing to set");
    expect(runs[5].stderr).toContain('no tenant named "nobody"');
    expect(runs[6].stderr).toContain('no tenant named "nobody"');
    expect(await tenants.find("strict")).toMatchObject({ weight: 1, maxQueued: null });
    expect(await new TenantCapStore(admin.pool).all()).toEqual([]);
  });
});
