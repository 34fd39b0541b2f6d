import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError } from "./errors.ts";

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

/** "true"/"1"/"yes" → true; everything else false. Env booleans are strings. */
export const envBoolean = z.union([z.boolean(), z.string()]).transform((v) => (typeof v === "boolean" ? v : ["true", "1", "yes"].includes(v.toLowerCase())));

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/inferline";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** The repository's own models/ folder, wherever the process was started from. */
export const DEFAULT_MODELS_DIR = fileURLToPath(new URL("../../../models", import.meta.url));

/** Attempts of a queue entry before its jobs fail for good (JOB_ATTEMPTS, the dispatcher's `attempts`). */
export const DEFAULT_JOB_ATTEMPTS = 5;
/** First retry delay of a queue entry in ms (RETRY_BACKOFF_MS, the dispatcher's `backoffMs`). */
export const DEFAULT_RETRY_BACKOFF_MS = 1000;

/**
 * Variables the API and the workers both read, declared once. Some must agree between them: a
 * queue entry's attempts and backoff are set by whichever process enqueues it, and a webhook
 * target the API accepts at submit must be one the worker delivers to.
 */
export const SharedEnv = z.object({
  DATABASE_URL: z.string().url().default(DEFAULT_DATABASE_URL),
  REDIS_URL: z.string().url().default(DEFAULT_REDIS_URL),
  /** Key prefix of everything in Redis. On a cluster BullMQ's keys get it as a hash tag, `{QUEUE_PREFIX}` (see REDIS_CLUSTER_NODES). */
  QUEUE_PREFIX: z.string().min(1).default("inferline"),
  /**
   * Redis Cluster seed nodes, comma-separated `host:port` (a few suffice; the rest are discovered).
   * When set, every connection is a cluster connection (queues, pub/sub, the result cache unless
   * CACHE_REDIS_URL names a single Redis), REDIS_URL then only gives the credentials (user,
   * password) and TLS (`rediss:`), and BullMQ's prefix becomes `{QUEUE_PREFIX}`. Default: unset (one Redis at REDIS_URL).
   */
  REDIS_CLUSTER_NODES: z.string().optional().transform(parseHostPorts),
  MODELS_DIR: z.string().default(DEFAULT_MODELS_DIR),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_PRETTY: envBoolean.default(false),
  /** Attempts of a queue entry before its jobs fail for good. Default 5. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(DEFAULT_JOB_ATTEMPTS),
  /** First retry delay in ms, doubling each attempt with jitter. Default 1000. */
  RETRY_BACKOFF_MS: z.coerce.number().int().min(0).default(DEFAULT_RETRY_BACKOFF_MS),
  /** Accept (API) and deliver to (worker) webhook targets on loopback/private/link-local addresses (tests, single-host setups). Default false. */
  WEBHOOK_ALLOW_PRIVATE: envBoolean.default(false),
  /**
   * Redis of the result cache (models whose manifest sets `cache`). Default: REDIS_URL. A Redis of
   * its own with `maxmemory` and `maxmemory-policy allkeys-lru` bounds the cache's memory; the
   * queues' Redis must keep `noeviction` (BullMQ's requirement), so sharing it bounds the cache
   * only by its entries' TTLs.
   */
  CACHE_REDIS_URL: z.string().url().optional(),
  /** Bound on one cache command, in ms: past it the cache is skipped (the model runs). Default 250. */
  CACHE_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(250),
  /** How long a single-flight claim (identical requests in flight run once) holds at most, in ms. Default 600000. */
  CACHE_FLIGHT_TTL_MS: z.coerce.number().int().min(1000).default(600_000),
  /** Bench diagnostics: a directory where the API and the worker append each job's hop times (`<dir>/<pid>.csv`, see docs/benchmarks.md). Default: unset (off). */
  INFERLINE_TRACE_HOPS: z
    .string()
    .optional()
    .transform((dir) => dir || undefined),
  /** Share of jobs the hop trace follows (0..1), chosen by id. Default 1. */
  INFERLINE_TRACE_HOPS_SAMPLE: z.coerce.number().default(1),
});
export type SharedEnv = z.infer<typeof SharedEnv>;

/** One `host:port` of a comma-separated list (REDIS_CLUSTER_NODES). */
export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses `host:port,host:port` (IPv6 in brackets); unset or blank is undefined. */
function parseHostPorts(value: string | undefined, ctx: z.RefinementCtx): HostPort[] | undefined {
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) return undefined;
  const nodes: HostPort[] = [];
  for (const item of items) {
    const m = HOST_PORT.exec(item);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: "custom", message: `expected host:port, got ${JSON.stringify(item.slice(0, 100))}` });
      return z.NEVER;
    }
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ""), port });
  }
  return nodes;
}

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

/**
 * Modules named in a comma-separated setting: absolute paths or file: URLs; relative paths
 * resolve against the working directory.
 */
export function moduleList(value: string): string[] {
  return value
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean)
    .map((m) => (m.startsWith("file:") ? m : path.resolve(m)));
}

/**
 * Variables of every process that applies migrations: `node dist/migrate.js` in the images,
 * `pnpm db:migrate`, `pnpm start`, `inferline keys create`.
 */
export const MigrationEnv = z.object({
  /**
   * The migrations to apply, in Prisma Migrate's layout. Default: the repository's
   * prisma/migrations (the images set /app/migrations).
   */
  MIGRATIONS_DIR: z.string().min(1).optional(),
});
export type MigrationEnv = z.infer<typeof MigrationEnv>;

/** Variables of every process that runs models (the worker, and the CLI's local scoring). */
export const InferenceEnv = z.object({
  /**
   * Longest one inference run of any model may take on a thread, in ms, winning over every
   * manifest's `timeoutMs`; a run past it has its thread replaced and its work retried
   * (`inference_timeout`). Default: unset (each manifest's `timeoutMs`, else 60000).
   */
  INFERENCE_TIMEOUT_MS: z.coerce.number().int().min(1).max(3_600_000).optional(),
  /**
   * Comma-separated ES modules imported on the main thread and in every inference thread before
   * models load, so that they can call registerAdapter (see moduleList). Default: none.
   */
  INFERENCE_ADAPTER_MODULES: z.string().default("").transform(moduleList),
});
export type InferenceEnv = z.infer<typeof InferenceEnv>;
