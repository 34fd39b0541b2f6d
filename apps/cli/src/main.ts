#!/usr/bin/env node
// Settings from a .env in the working directory, as the API and the worker read it (never over the environment).
import "@inferline/runtime/load-dot-env";
import { runCli } from "./program.ts";

process.exitCode = await runCli(process.argv);
