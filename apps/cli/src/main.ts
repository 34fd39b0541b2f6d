#!/usr/bin/env -S node --import tsx
import { Command } from "commander";
import { InferlineError } from "@inferline/contracts";
import { registerKeys } from "./commands/keys.ts";
import { registerRemote } from "./commands/remote.ts";
import { registerScore } from "./commands/score.ts";
import { registerTenants } from "./commands/tenants.ts";

const program = new Command("inferline").description("Inferline: asynchronous inference for ONNX models").showHelpAfterError();
registerKeys(program);
registerRemote(program);
registerScore(program);
registerTenants(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof InferlineError) console.error(`inferline: ${err.message}`);
  else console.error(`inferline: ${(err as Error).message}`);
  process.exitCode = 1;
});
