import { fileURLToPath } from "node:url";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";

/**
 * Whether the CLI runs from its TypeScript source in the repository, or from the built package,
 * where every module is a file of dist/ (tsdown.config.ts) with the files below beside them.
 */
const fromSource = import.meta.url.endsWith(".ts");

/** The model repository when neither --models-dir nor MODELS_DIR names one: the repository's models/, or the package's copy of iris. */
export const SHIPPED_MODELS_DIR = fromSource ? DEFAULT_MODELS_DIR : fileURLToPath(new URL("./models", import.meta.url));

/**
 * The database migrations `keys create` applies, in the package: its copy. From the source it is
 * undefined, and migrate() reads the repository's prisma/migrations (@inferline/db, which loads
 * Prisma, is imported only by the commands that talk to PostgreSQL).
 */
export const SHIPPED_MIGRATIONS_DIR: string | undefined = fromSource
  ? undefined
  : fileURLToPath(new URL("./migrations", import.meta.url));

/** A module of the CLI that a worker thread loads by URL: the source file, or the package's entry of that name. */
export function cliModuleUrl(relative: string, from: string): string {
  return new URL(fromSource ? `${relative}.ts` : `${relative}.mjs`, from).href;
}

/** Whether the shipped models are the package's own copy, which `models add` must not write into (an upgrade would lose it). */
export const SHIPPED_MODELS_READ_ONLY = !fromSource;
