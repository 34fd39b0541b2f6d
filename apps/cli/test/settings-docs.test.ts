import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { expect, it } from "vitest";
import { DEFAULT_API_URL } from "../src/cli-options.ts";
import { createProgram } from "../src/program.ts";
import { ROOT } from "./support/score-cli.ts";

// The apps' settings tables are generated from their env schemas (scripts/generate-settings-docs.ts);
// the CLI's variables are its options' (commander's Option.env): each must be in the CLI table of
// docs/configuration.md and in .env.example, and the table's INFERLINE_URL default must be the CLI's.

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

function envVars(command: Command): string[] {
  return [...command.options.flatMap((o) => (o.envVar ? [o.envVar] : [])), ...command.commands.flatMap(envVars)];
}

const cliSection = () => {
  const docs = read("docs/configuration.md");
  return docs.slice(docs.indexOf("\n## CLI\n"), docs.indexOf("\n## ", docs.indexOf("\n## CLI\n") + 1));
};

it("every variable a CLI option reads is in docs/configuration.md's CLI table and in .env.example", () => {
  const vars = [...new Set(envVars(createProgram()))];
  expect(vars).toContain("INFERLINE_URL");
  const table = cliSection();
  const example = read(".env.example");
  expect(vars.filter((name) => !table.includes(`\`${name}\``))).toEqual([]);
  expect(vars.filter((name) => !new RegExp(`^#? ?${name}=`, "m").test(example))).toEqual([]);
});

it("the CLI table shows the CLI's default API URL", () => {
  expect(cliSection()).toContain(`| \`INFERLINE_URL\` | \`${DEFAULT_API_URL}\` |`);
});
