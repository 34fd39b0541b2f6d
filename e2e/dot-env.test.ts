import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, sleepUntil, testRedisUrl } from "@inferline/testing";
import {
  API_MAIN,
  CLI_MAIN,
  exitOf,
  runProcess,
  START_SCRIPT,
  WORKER_MAIN,
  type RunningProcess,
} from "./support/processes.ts";

/** The variables these tests set, left out of the environment the processes inherit. */
const SETTINGS = ["PORT", "HOST", "METRICS_PORT", "DATABASE_URL", "REDIS_URL", "INFERLINE_URL", "INFERLINE_API_KEY"];
const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SETTINGS.includes(name)));

const running: RunningProcess[] = [];
const folders: string[] = [];
afterEach(async () => {
  for (const run of running.splice(0)) {
    run.child.kill("SIGTERM");
    await exitOf(run.child);
  }
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A working directory holding a `.env` with these lines. */
function withDotEnv(settings: Record<string, string | number>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-dotenv-"));
  const lines = Object.entries(settings).map(([name, value]) => `${name}=${value}\n`);
  fs.writeFileSync(path.join(dir, ".env"), lines.join(""));
  folders.push(dir);
  return dir;
}

/** PostgreSQL and Redis URLs where nothing listens: the apps wait for them with their probes up. */
async function nowhere(): Promise<{ DATABASE_URL: string; REDIS_URL: string }> {
  return {
    DATABASE_URL: `postgresql://postgres@127.0.0.1:${await freePort()}/dotenv`,
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
  };
}

function start(file: string, cwd: string, env: Record<string, string> = {}, args: string[] = []): RunningProcess {
  const run = runProcess(file, env, { cwd, baseEnv: inherited, args });
  running.push(run);
  return run;
}

async function answersHealthz(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })).status === 200;
  } catch {
    return false;
  }
}

describe("a .env file in the working directory", () => {
  it.each([
    ["api", API_MAIN, "PORT"],
    ["worker", WORKER_MAIN, "METRICS_PORT"],
  ])("gives the %s its settings", async (name, main, portVariable) => {
    const port = await freePort();
    const run = start(main, withDotEnv({ [portVariable]: port, HOST: "127.0.0.1", ...(await nowhere()) }));
    await sleepUntil(() => answersHealthz(port), {
      timeoutMs: 20_000,
      message: `the ${name} answers on the port its .env names:\n${run.output()}`,
    });
  });

  it("never overrides a variable the environment sets", async () => {
    const [filePort, envPort] = [await freePort(), await freePort()];
    const run = start(API_MAIN, withDotEnv({ PORT: filePort, HOST: "127.0.0.1", ...(await nowhere()) }), {
      PORT: String(envPort),
    });
    await sleepUntil(() => answersHealthz(envPort), {
      timeoutMs: 20_000,
      message: `the API answers on the environment's port:\n${run.output()}`,
    });
    expect(await answersHealthz(filePort)).toBe(false);
  });

  it("gives `pnpm start` its settings", async () => {
    const { DATABASE_URL } = await nowhere();
    const run = start(START_SCRIPT, withDotEnv({ DATABASE_URL }), { REDIS_URL: testRedisUrl() });
    expect(await exitOf(run.child)).toBe(1);
    expect(run.output()).toContain(`PostgreSQL is not reachable at ${new URL("/postgres", DATABASE_URL).href}`);
  });

  it("gives the CLI its settings", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const dotEnv = withDotEnv({ INFERLINE_URL: url, INFERLINE_API_KEY: "il_0123456789abcdef0123456789abcdef" });
    const run = start(CLI_MAIN, dotEnv, {}, ["jobs", "get", "00000000-0000-4000-8000-000000000000"]);
    expect(await exitOf(run.child)).toBe(3); // unavailable: nothing answers at the .env's URL
    expect(run.output()).toContain(url);
  });
});
