import { fileURLToPath } from "node:url";
import { z } from "zod";

/**
 * Parses an app's environment once, at start-up. A bad value ends the process with one line per
 * variable, never a stack trace.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(source);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid environment:\n${lines.join("\n")}`);
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** "true"/"1"/"yes" → true; everything else false. Env booleans are strings. */
export const envBoolean = z
  .union([z.boolean(), z.string()])
  .transform((v) => (typeof v === "boolean" ? v : ["true", "1", "yes"].includes(v.toLowerCase())));

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/inferline";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** The repository's own models/ folder, wherever the process was started from. */
export const DEFAULT_MODELS_DIR = fileURLToPath(new URL("../../../models", import.meta.url));

/** Variables every process shares. */
export const SharedEnv = z.object({
  DATABASE_URL: z.string().url().default(DEFAULT_DATABASE_URL),
  REDIS_URL: z.string().url().default(DEFAULT_REDIS_URL),
  /** BullMQ key prefix; wrap in {braces} for Redis Cluster hash-tagging. */
  QUEUE_PREFIX: z.string().min(1).default("inferline"),
  MODELS_DIR: z.string().default(DEFAULT_MODELS_DIR),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type SharedEnv = z.infer<typeof SharedEnv>;

/** Hides the password of a connection URL, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable url>";
  }
}
