import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const API_MAIN = path.join(ROOT, "apps/api/src/main.ts");
export const WORKER_MAIN = path.join(ROOT, "apps/worker/src/main.ts");
export const START_SCRIPT = path.join(ROOT, "scripts/start.ts");
export const CLI_MAIN = path.join(ROOT, "apps/cli/src/main.ts");
/** tsx's loader by URL, so that a process started in any directory finds it. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

export interface RunningProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
}

/**
 * Runs one of the apps as a real child process (through tsx), with `env` over this process's
 * environment (or instead of it, given `baseEnv`), in the repository's root or in `cwd`, with `args`.
 */
export function runProcess(
  file: string,
  env: Record<string, string>,
  options: { cwd?: string; baseEnv?: NodeJS.ProcessEnv; args?: string[] } = {},
): RunningProcess {
  const { cwd = ROOT, baseEnv = process.env, args = [] } = options;
  const child = spawn(process.execPath, ["--import", TSX, file, ...args], {
    cwd,
    env: { ...baseEnv, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return { child, output: () => out };
}

export async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

/**
 * Keeps a worker process running: starts it again each time it dies (as a process manager
 * would), and counts the deaths. stop() ends the last one.
 */
export class WorkerSupervisor {
  deaths = 0;
  current: RunningProcess | undefined;
  private stopped = false;
  private log = "";

  constructor(private readonly env: Record<string, string>) {}

  start(): this {
    const run = runProcess(WORKER_MAIN, this.env);
    this.current = run;
    run.child.once("exit", () => {
      this.log += run.output();
      if (this.stopped) return;
      this.deaths++;
      this.start();
    });
    return this;
  }

  /** Output of every process so far. */
  output(): string {
    return this.log + (this.current?.output() ?? "");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.current?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exitOf(child);
  }
}
