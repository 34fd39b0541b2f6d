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
export const envBoolean = z
  .union([z.boolean(), z.string()])
  .transform((v) => (typeof v === "boolean" ? v : ["true", "1", "yes"].includes(v.toLowerCase())));

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/inferline";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** The repository's own models/ folder, wherever the process was started from. */
export const DEFAULT_MODELS_DIR = fileURLToPath(new URL("../../../models", import.meta.url));

/** Attempts of a queue entry before its jobs fail for good (JOB_ATTEMPTS, the dispatcher's `attempts`). */
export const DEFAULT_JOB_ATTEMPTS = 5;
/** First retry delay of a queue entry in ms (RETRY_BACKOFF_MS, the dispatcher's `backoffMs`). */
export const DEFAULT_RETRY_BACKOFF_MS = 1000;

/**
 * What docs/configuration.md and .env.example say about a setting, attached to its schema with
 * `.meta()`: scripts/generate-settings-docs.ts writes both files from the schemas, so a setting's
 * default (the schema's `.default()`) and its description are written once, here and in the apps' env.ts.
 */
export interface SettingDoc {
  /** One line of Markdown: what the setting does. */
  description: string;
  /** Shown as the default when the schema has none, or when its default is computed (a path). */
  defaultText?: string;
  /** Value of the commented-out line in .env.example for a setting without a fixed default. */
  example?: string;
}

/** Attaches a setting's documentation to its schema (read back by the settings docs generator). */
export const setting = <T extends z.ZodType>(schema: T, doc: SettingDoc): T => schema.meta({ ...doc });

/** The documentation `setting` attached to a schema, if any. */
export const settingDoc = (schema: z.ZodType): SettingDoc | undefined => {
  const meta = schema.meta() as Partial<SettingDoc> | undefined;
  return meta?.description ? (meta as SettingDoc) : undefined;
};

/** A setting's `.default()` value, looking through its transforms; undefined when it has none. */
export function settingDefault(schema: z.ZodType): unknown {
  if (schema instanceof z.ZodDefault) return schema.def.defaultValue;
  if (schema instanceof z.ZodPipe) return settingDefault(schema.in as z.ZodType);
  return undefined;
}

/**
 * Variables the API and the workers both read, declared once. Some must agree between them: a
 * queue entry's attempts and backoff are set by whichever process enqueues it, and a webhook
 * target the API accepts at submit must be one the worker delivers to.
 */
export const SharedEnv = z.object({
  DATABASE_URL: setting(z.string().url().default(DEFAULT_DATABASE_URL), { description: "PostgreSQL" }),
  REDIS_URL: setting(z.string().url().default(DEFAULT_REDIS_URL), {
    description: "Redis (queues, pub/sub, model readiness, and the cache unless `CACHE_REDIS_URL`)",
  }),
  /**
   * A few seed nodes suffice; the rest are discovered. The result cache becomes a cluster
   * connection too unless CACHE_REDIS_URL names a single Redis.
   */
  REDIS_CLUSTER_NODES: setting(z.string().optional().transform(parseHostPorts), {
    description:
      "Redis Cluster seed nodes, `host:port,host:port`: every connection becomes a cluster connection, `REDIS_URL` then gives only the credentials and TLS, and BullMQ's prefix becomes `{QUEUE_PREFIX}` ([Redis Cluster](architecture.md#redis-cluster))",
    example: "10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379",
  }),
  QUEUE_PREFIX: setting(z.string().min(1).default("inferline"), {
    description: "key prefix of everything in Redis (on a cluster BullMQ's keys take it as a hash tag, `{inferline}`)",
  }),
  MODELS_DIR: setting(z.string().default(DEFAULT_MODELS_DIR), {
    description: "the [model repository](models.md)",
    defaultText: "the repository's `models/` (images: `/app/models`)",
    example: "/path/to/models",
  }),
  LOG_LEVEL: setting(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"), {
    description: "`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`",
  }),
  LOG_PRETTY: setting(envBoolean.default(false), {
    description: "human-readable logs instead of JSON lines (`pnpm start` sets it)",
  }),
  JOB_ATTEMPTS: setting(z.coerce.number().int().min(1).max(100).default(DEFAULT_JOB_ATTEMPTS), {
    description: "attempts of a queue entry before its jobs fail for good (1 to 100)",
  }),
  RETRY_BACKOFF_MS: setting(z.coerce.number().int().min(0).default(DEFAULT_RETRY_BACKOFF_MS), {
    description: "first retry delay of a queue entry, doubling each attempt, with jitter",
  }),
  /** The API checks a target at submit, the worker again at delivery: both must read the same value. */
  WEBHOOK_ALLOW_PRIVATE: setting(envBoolean.default(false), {
    description:
      "accept (API) and deliver to (worker) webhook targets on loopback, private and link-local addresses: single-machine setups and tests only",
  }),
  /**
   * The queues' Redis must keep `noeviction` (BullMQ's requirement), so sharing it bounds the
   * cache only by its entries' TTLs.
   */
  CACHE_REDIS_URL: setting(z.string().url().optional(), {
    description:
      "Redis of the [result cache](cache.md); one of its own with `maxmemory` and `allkeys-lru` bounds the cache's memory",
    defaultText: "`REDIS_URL`",
    example: "redis://127.0.0.1:6380",
  }),
  CACHE_COMMAND_TIMEOUT_MS: setting(z.coerce.number().int().min(10).max(10_000).default(250), {
    description: "bound on one cache command; past it the cache is skipped and the model runs (10 to 10,000)",
  }),
  CACHE_FLIGHT_TTL_MS: setting(z.coerce.number().int().min(1000).default(600_000), {
    description: "how long a single-flight claim (identical requests in flight run once) holds at most",
  }),
  INFERLINE_TRACE_HOPS: setting(
    z
      .string()
      .optional()
      .transform((dir) => dir || undefined),
    {
      description:
        "bench diagnostics: a directory where the API and the worker append each job's hop times (`<dir>/<pid>.csv`, see [benchmarks](benchmarks.md))",
      defaultText: "unset (off)",
      example: "/tmp/hops",
    },
  ),
  INFERLINE_TRACE_HOPS_SAMPLE: setting(z.coerce.number().min(0).max(1).default(1), {
    description: "share of jobs the hop trace follows (0 to 1), chosen by id",
  }),
});
export type SharedEnv = z.infer<typeof SharedEnv>;

/** Defaults of the connection bounds, which differ between the API (a request waits) and the worker (a result write may take longer). */
export interface ConnectionDefaults {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  redisCommandTimeoutMs: number;
}

/** Connection bounds the API and the workers both read, each process with defaults of its own. */
export const ConnectionEnv = (defaults: ConnectionDefaults) =>
  z.object({
    DATABASE_CONNECT_TIMEOUT_MS: setting(
      z.coerce.number().int().min(100).max(60_000).default(defaults.connectTimeoutMs),
      {
        description: "opening a PostgreSQL connection, or waiting for a free one; past it 503 (100 to 60,000)",
      },
    ),
    /**
     * A hung server can hold a request for the timeout plus its fifth: the API's default answers a
     * frozen PostgreSQL with 503 within 2 s. A batch upload's chunk inserts have their own 30 s bound.
     */
    DATABASE_STATEMENT_TIMEOUT_MS: setting(z.coerce.number().int().min(0).default(defaults.statementTimeoutMs), {
      description:
        "PostgreSQL `statement_timeout` (0: none); each query also gets a fifth of it (at most 1 s) on the client side, which bounds how long a hung server holds a request",
    }),
    REDIS_COMMAND_TIMEOUT_MS: setting(
      z.coerce.number().int().min(50).max(60_000).default(defaults.redisCommandTimeoutMs),
      {
        description:
          "bound on one Redis command of a producer connection (never on BullMQ's blocking or subscriber connections)",
      },
    ),
  });

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
  MIGRATIONS_DIR: setting(z.string().min(1).optional(), {
    description:
      "where the migration runner (`pnpm db:migrate`, `node dist/migrate.js`, `pnpm start`, the CLI's `keys create`) reads the migrations, in Prisma Migrate's layout",
    defaultText: "the repository's `prisma/migrations` (images: `/app/migrations`)",
    example: "/path/to/prisma/migrations",
  }),
});
export type MigrationEnv = z.infer<typeof MigrationEnv>;

/** Variables of every process that runs models (the worker, and the CLI's local scoring). */
export const InferenceEnv = z.object({
  INFERENCE_TIMEOUT_MS: setting(z.coerce.number().int().min(1).max(3_600_000).optional(), {
    description:
      "longest one inference run may take, overriding every manifest; a run past it has its thread replaced and its jobs retried (`inference_timeout`)",
    defaultText: "unset (each manifest's `timeoutMs`, else 60000)",
    example: "60000",
  }),
  /** Imported before models load so that they can call registerAdapter (see moduleList). */
  INFERENCE_ADAPTER_MODULES: setting(z.string().default("").transform(moduleList), {
    description:
      "ES modules (absolute paths or `file:` URLs, comma-separated) that call `registerAdapter`, imported on the main thread and in every inference thread before models load",
    defaultText: "none",
    example: "/srv/inferline/adapters/my-adapter.ts",
  }),
});
export type InferenceEnv = z.infer<typeof InferenceEnv>;
