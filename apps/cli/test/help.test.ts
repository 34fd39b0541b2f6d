import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "../src/exit-codes.ts";
import { createProgram } from "../src/program.ts";
import { CLI_MAIN, ROOT } from "./support/score-cli.ts";

// What `inferline … --help`, `--version` and a mistyped command line print.

const run = promisify(execFile);

/** Runs the CLI with `env` over this process's environment; resolves with its exit code and output. */
async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", CLI_MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return err as { code: number; stdout: string; stderr: string };
  }
}

/** Every command's words after `inferline` (the program itself as []). */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return [
    prefix,
    ...command.commands.filter((c) => c.name() !== "help").flatMap((c) => commandPaths(c, [...prefix, c.name()])),
  ];
}

/** Values the environment holds in a real deployment, each of which help must never print. */
const SENTINELS: Record<string, string> = {
  INFERLINE_API_KEY: "il_SENTINELKEY0123456789",
  INFERLINE_URL: "https://sentinel-api.example:4443",
  DATABASE_URL: "postgresql://admin:SENTINELPASSWORD@db.example:5432/prod",
  REDIS_URL: "redis://:SENTINELREDISPASS@redis.example:6379",
  REDIS_CLUSTER_NODES: "sentinel-node-1:7000,sentinel-node-2:7001",
  QUEUE_PREFIX: "sentinel-prefix",
  MODELS_DIR: "/srv/sentinel-models",
  INFERENCE_ADAPTER_MODULES: "/srv/sentinel-adapter.mjs",
  INFERENCE_TIMEOUT_MS: "987654",
};

describe("help", () => {
  it("shows no value taken from the environment in any command's help, and names the variables instead", async () => {
    const paths = commandPaths(createProgram());
    expect(paths.length).toBeGreaterThan(15);
    const helps: string[] = [];
    // A few at a time: each is a process of its own on a 2-core machine.
    for (let i = 0; i < paths.length; i += 4) {
      const runs = await Promise.all(paths.slice(i, i + 4).map((words) => cli([...words, "--help"], SENTINELS)));
      for (const [j, r] of runs.entries()) {
        expect(r.code, `${paths[i + j]!.join(" ")} --help: ${r.stderr}`).toBe(0);
        helps.push(r.stdout);
      }
    }
    // Help wraps its lines to the terminal's width: compare with every run of white space as one space.
    const all = helps.join("\n").replace(/\s+/g, " ");
    for (const [name, value] of Object.entries(SENTINELS)) {
      expect(all, name).not.toContain(value);
      for (const part of value.split(/[:/@,]+/).filter((p) => p.includes("SENTINEL") || p.includes("sentinel")))
        expect(all, `${name}: ${part}`).not.toContain(part);
    }
    for (const name of ["INFERLINE_API_KEY", "INFERLINE_URL", "DATABASE_URL", "REDIS_URL", "MODELS_DIR"])
      expect(all).toContain(`env: ${name}`);
  }, 120_000);

  it("ends the program's help with the exit codes, as docs/cli.md lists them", async () => {
    const help = await cli(["--help"]);
    const docs = fs.readFileSync(path.join(ROOT, "docs/cli.md"), "utf8");
    for (const [code, meaning] of EXIT_CODES) {
      expect(help.stdout).toContain(`  ${String(code).padEnd(4)}${meaning}`);
      expect(docs).toContain(`| ${code} | ${meaning} |`);
    }
  });
});

describe("usage", () => {
  it("prints the version of the packages", async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "apps/cli/package.json"), "utf8")) as {
      version: string;
    };
    for (const flag of ["--version", "-V"])
      expect(await cli([flag])).toMatchObject({ code: 0, stdout: `${manifest.version}\n` });
  });

  it("answers a mistyped option with one line, a suggestion and the command's help to run, and exit 2", async () => {
    const typo = await cli(["score", "flowers.csv", "--modle", "iris"]);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe("");
    expect(typo.stderr).toBe(
      "error: unknown option '--modle'\n(Did you mean --model?)\n(run inferline score --help)\n",
    );

    const missing = await cli(["jobs", "get"]);
    expect(missing).toMatchObject({
      code: 2,
      stderr: "error: missing required argument 'id'\n(run inferline jobs get --help)\n",
    });
    const required = await cli(["batches", "create", "items.jsonl"]);
    expect(required).toMatchObject({
      code: 2,
      stderr: "error: required option '-m, --model <name>' not specified\n(run inferline batches create --help)\n",
    });
    const unknown = await cli(["scroe"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command 'scroe'\n(Did you mean score?)\n(run inferline --help)\n");
  });
});
