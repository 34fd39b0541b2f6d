import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, where the CLI runs from. */
export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** The CLI's entry point. */
export const CLI_MAIN = path.join(ROOT, "apps/cli/src/main.ts");

/** Runs `inferline score <args>` in a process of its own (environment: this one's plus `env`); resolves with its exit code and stderr. */
export function runScore(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI_MAIN, "score", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr })));
}
