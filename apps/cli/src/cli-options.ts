import { Option } from "commander";
import { InferlineClient } from "@inferline/client";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from "@inferline/contracts";
import { UsageError } from "./score/types.ts";
import { SHIPPED_MODELS_DIR } from "./shipped-files.ts";

// Options several commands share. A value may come from the environment (commander's
// Option.env): help then names the variable, never its value, so `--help` shows no secret.

/** The API base URL; absent, the command works locally (score, models) unless `fallback` is given. */
export const remoteOption = (description: string, fallback?: string) => {
  const option = new Option("--remote <url>", description).env("INFERLINE_URL");
  return fallback ? option.default(fallback) : option;
};

export function apiKeyOption(): Option {
  return new Option("--api-key <key>", "API key of a tenant (inferline keys create)").env("INFERLINE_API_KEY");
}

export function databaseUrlOption(): Option {
  return new Option("--database-url <url>", "PostgreSQL URL").env("DATABASE_URL").default(DEFAULT_DATABASE_URL);
}

export function redisUrlOption(): Option {
  return new Option("--redis-url <url>", "Redis URL the API processes use").env("REDIS_URL").default(DEFAULT_REDIS_URL);
}

export function modelsDirOption(): Option {
  const shipped = "the models shipped with inferline";
  return new Option("--models-dir <dir>", "the model repository")
    .env("MODELS_DIR")
    .default(SHIPPED_MODELS_DIR, shipped);
}

export const jsonOption = () => new Option("--json", "print JSON instead of a table");

/** The API the remote commands talk to: `--remote`, `--api-key`. */
export const DEFAULT_API_URL = "http://127.0.0.1:3000";

export interface RemoteFlags {
  remote?: string;
  apiKey?: string;
}

/** A client of the cluster at --remote (whose errors print as one line: `401 unauthorized: …`). */
export function clientOf(flags: RemoteFlags): InferlineClient {
  if (!flags.remote) throw new UsageError("give the API's URL: --remote (or INFERLINE_URL)");
  if (!flags.apiKey) throw new UsageError("give an API key: --api-key (or INFERLINE_API_KEY)");
  return new InferlineClient({ baseUrl: flags.remote, apiKey: flags.apiKey });
}
