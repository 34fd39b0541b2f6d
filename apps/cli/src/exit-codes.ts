import { CommanderError } from "commander";
import { InferlineAPIError } from "@inferline/client";
import { ConfigError, InferlineError } from "@inferline/contracts";

/** What the CLI exits with; EXIT_CODES says each one's meaning (the help's epilogue and docs/cli.md). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unavailable: 3,
  auth: 4,
  waitEnded: 124,
  sigint: 130,
  sigterm: 143,
} as const;

export const EXIT_CODES: ReadonlyArray<readonly [code: number, meaning: string]> = [
  [EXIT.ok, "success"],
  [
    EXIT.failed,
    "failed: rows that did not score, a waited-for job or batch item that did not succeed, a model mismatch, a bug",
  ],
  [
    EXIT.usage,
    "usage: a bad option or argument, a missing input, an unknown model, tenant, key, job or batch, a request refused as invalid",
  ],
  [
    EXIT.unavailable,
    "unavailable: the API, PostgreSQL or Redis could not be reached, timed out, or answered 429 or 5xx after the retries",
  ],
  [EXIT.auth, "authentication: the API refused the API key (401, 403)"],
  [EXIT.waitEnded, "--wait ended before the job or batch did (it goes on)"],
  [EXIT.sigint, "interrupted (Ctrl-C); 143 on SIGTERM"],
];

/** The table for `inferline --help`. */
export function exitCodesHelp(): string {
  return `\nExit codes:\n${EXIT_CODES.map(([code, meaning]) => `  ${String(code).padEnd(4)}${meaning}`).join("\n")}\n`;
}

/** An error that says which exit code it ends the command with. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ExitError) return err.exitCode;
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof InferlineAPIError) return answerExit(err.status);
  if (err instanceof ConfigError) return EXIT.usage;
  // The CLI's own errors (and those of the packages it runs in-process) carry the status the API would answer them with.
  if (err instanceof InferlineError) {
    if (err.status === 503) return EXIT.unavailable;
    return err.status >= 400 && err.status < 500 ? answerExit(err.status) : EXIT.failed;
  }
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") return EXIT.usage;
  return EXIT.failed;
}

/** An API's answer as an exit code: none (no answer), 429 and 5xx are the service's; 401 and 403 the key's; other 4xx the caller's. */
function answerExit(status: number | undefined): number {
  if (status === undefined || status === 429 || status >= 500) return EXIT.unavailable;
  if (status === 401 || status === 403) return EXIT.auth;
  return status >= 400 ? EXIT.usage : EXIT.failed;
}
