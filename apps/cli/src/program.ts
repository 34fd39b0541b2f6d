import { Command, CommanderError } from "commander";
import { VERSION } from "@inferline/client";
import { registerBatches } from "./commands/batches.ts";
import { registerJobs } from "./commands/jobs.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerModels } from "./commands/models.ts";
import { registerScore } from "./commands/score.ts";
import { registerTenants } from "./commands/tenants.ts";
import { EXIT, exitCodeOf, exitCodesHelp } from "./exit-codes.ts";

/** The `inferline` command with every subcommand. */
export function createProgram(): Command {
  const program = new Command("inferline")
    .description("Inferline: asynchronous inference for ONNX models")
    .version(VERSION, "-V, --version", "print the version")
    .addHelpText("after", exitCodesHelp())
    .exitOverride();
  registerScore(program);
  registerModels(program);
  registerJobs(program);
  registerBatches(program);
  registerKeys(program);
  registerTenants(program);
  forEachCommand(program, (command) => {
    // A usage error prints one line and where to read more, not the whole help.
    command.showHelpAfterError(`(run ${commandPath(command)} --help)`).exitOverride();
    checkRequiredAfterUnknown(command);
  });
  return program;
}

/**
 * Commander checks required options before unknown ones, so `score x.csv --modle iris` would say
 * that --model is missing. The command's required options are checked in a preAction hook
 * instead, which runs after the unknown-option check: the typo is what the user is told about.
 */
function checkRequiredAfterUnknown(command: Command): void {
  const required = command.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const option of required) option.makeOptionMandatory(false);
  command.hook("preAction", () => {
    const missing = required.find((o) => command.getOptionValue(o.attributeName()) === undefined);
    if (!missing) return;
    command.error(`error: required option '${missing.flags}' not specified`, {
      code: "commander.missingMandatoryOptionValue",
    });
  });
}

/**
 * Runs the CLI on `argv` and answers its exit code: what the command set (score's, a wait's),
 * else 0; an error is printed as one line (`inferline: …`; commander prints its own usage errors)
 * and mapped by exitCodeOf.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (!(err instanceof CommanderError)) console.error(`inferline: ${(err as Error).message ?? String(err)}`);
    return exitCodeOf(err);
  }
}

function forEachCommand(command: Command, visit: (command: Command) => void): void {
  visit(command);
  for (const sub of command.commands) forEachCommand(sub, visit);
}

/** `inferline jobs get`: the names from the program down to the command. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}
