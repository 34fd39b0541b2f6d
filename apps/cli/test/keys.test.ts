import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database, TenantStore } from "@inferline/db";
import { createTestDatabase, type TestDatabase } from "@inferline/testing";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = path.join(ROOT, "apps/cli/src/main.ts");

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("inferline keys create", () => {
  it("prints a new key on the last line of stdout; the key authenticates its tenant and is stored only hashed", async () => {
    const run = await cli(["keys", "create", "--tenant", "acme"], { DATABASE_URL: db.url });
    expect(run.code).toBe(0);
    const key = run.stdout.trim().split("\n").at(-1)!;
    expect(key).toMatch(/^il_[A-Za-z0-9_-]{40,}$/);
    const admin = new Database(db.url, { poolSize: 1 });
    try {
      expect(await new TenantStore(admin.prisma).authenticate(key)).toMatchObject({ name: "acme" });
      const stored = await admin.pool.query(`select "keyHash" from api_keys`);
      expect(JSON.stringify(stored.rows)).not.toContain(key);
    } finally {
      await admin.close();
    }
  });

  it("with PostgreSQL down: exit 1 and one line naming the URL", async () => {
    const run = await cli(["keys", "create", "--tenant", "acme"], { DATABASE_URL: "postgresql://postgres@127.0.0.1:1/inferline" });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain("PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/inferline");
  });
});
