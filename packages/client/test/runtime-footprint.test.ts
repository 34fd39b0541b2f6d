import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

// The client's types come from the API's OpenAPI document, not from @inferline/contracts: loading
// it must load neither the contracts' code nor zod. A module hook in a child process lists every
// module it resolves.
it("loads without zod or @inferline/contracts", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "client-footprint-"));
  try {
    const hooks = path.join(dir, "hooks.mjs");
    fs.writeFileSync(
      hooks,
      "export async function resolve(s, c, next) { const r = await next(s, c); console.log('RESOLVED ' + r.url); return r; }\n",
    );
    const register = path.join(dir, "register.mjs");
    fs.writeFileSync(
      register,
      `import { register } from "node:module"; register(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`,
    );
    const entry = fileURLToPath(new URL("../src/index.ts", import.meta.url));
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        register,
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(entry)}); console.log("EXPORTS " + Object.keys(m).sort().join(","));`,
      ],
      {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        encoding: "utf8",
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const resolved = run.stdout.split("\n").filter((l) => l.startsWith("RESOLVED "));
    expect(resolved.some((l) => l.includes("/packages/client/src/transport.ts"))).toBe(true);
    expect(resolved.filter((l) => /\/zod\/|\/packages\/contracts\//.test(l))).toEqual([]);
    expect(run.stdout).toContain(
      "EXPORTS AuthenticationError,ConflictError,ConnectionError,InferlineAPIError,InferlineClient,JobFailedError,NotFoundError,RateLimitError," +
        "TimeoutError,UnavailableError,VERSION,ValidationError,WebhookVerificationError,isFinishedBatch,isTerminalJob,verifyWebhook",
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
