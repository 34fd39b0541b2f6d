import { InvalidArgumentError, Option, type Command } from "commander";
import { apiKeyOption, DEFAULT_API_URL, jsonOption, remoteOption } from "../cli-options.ts";
import { EXIT } from "../exit-codes.ts";

// What `jobs` and `batches` share: the cluster's options, --wait, list paging and the exit code of a wait.

/** --remote (default DEFAULT_API_URL, or INFERLINE_URL), --api-key and --json on a command. */
export function remoteCommand(command: Command): Command {
  return command
    .addOption(remoteOption("API base URL", DEFAULT_API_URL))
    .addOption(apiKeyOption())
    .addOption(jsonOption());
}

const WAIT_HELP = `wait until it ends (at most this many seconds; exit ${EXIT.waitEnded} if it had not ended by then)`;

/** `--wait [seconds]`: alone, until the work ends; with seconds, at most that long. */
export const waitOption = () =>
  new Option("--wait [seconds]", WAIT_HELP).argParser((value: string): number => {
    const seconds = Number(value);
    if (!(seconds > 0)) throw new InvalidArgumentError("expected a number of seconds above 0");
    return seconds;
  });

/** The wait's deadline for the client: undefined (until it ends) for a bare --wait. */
export const waitSeconds = (wait: number | true): number | undefined => (wait === true ? undefined : wait);

/** `--cache`: what a job or batch does with the model's result cache. */
export const cacheOption = () =>
  new Option("--cache <mode>", "the result cache: bypass (run anyway, refresh it), off (run, leave it alone)").choices([
    "bypass",
    "off",
  ]);

/** `--limit`, `--cursor` of a list command. */
export function pageOptions(command: Command, noun: string): Command {
  return command
    .option("--limit <n>", `most ${noun} to print (pages are followed until there are this many)`, positiveInt, 20)
    .option(
      "--cursor <cursor>",
      `start after the ${noun} a previous list stopped at (it prints the cursor when more remain)`,
    );
}

/**
 * Up to `limit` items, page after page from `cursor`; answers them and where the next page
 * starts (null when there are no more).
 */
export async function collectPages<Item>(
  fetchPage: (cursor: string | undefined, limit: number) => Promise<{ items: Item[]; nextCursor: string | null }>,
  limit: number,
  cursor?: string,
): Promise<{ items: Item[]; nextCursor: string | null }> {
  const items: Item[] = [];
  let next: string | null = cursor ?? null;
  do {
    const page = await fetchPage(next ?? undefined, limit - items.length);
    items.push(...page.items);
    next = page.nextCursor;
  } while (next && items.length < limit);
  return { items, nextCursor: next };
}

/** Says on standard error how to list the rest, when more remain. */
export function hintMore(command: string, nextCursor: string | null): void {
  if (nextCursor) console.error(`more: ${command} --cursor ${nextCursor}`);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return n;
}
