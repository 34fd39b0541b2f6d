import bytes from "bytes";
import { z } from "zod";
import { parseEnv, SharedEnv } from "@inferline/contracts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "@inferline/db";
import { DEFAULT_RECHECK_MS, DEFAULT_REDIS_COMMAND_TIMEOUT_MS } from "@inferline/queue";

export const ApiEnv = SharedEnv.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default("0.0.0.0"),
  /** Largest JSON body of a single-job request. Default 1mb. */
  BODY_LIMIT: z.string().default("1mb"),
  /** Largest body of a batch request. Default 200mb. */
  BATCH_BODY_LIMIT: z.string().default("200mb"),
  /** Queued jobs per model above which submits answer 503 with Retry-After. Default 1,000,000. */
  MAX_QUEUE_DEPTH: z.coerce.number().int().min(1).default(1_000_000),
  /** Jobs and batch items a tenant may have queued (not started) at once, for tenants without a maxQueued of their own; past it 429 quota_exceeded. Unset: no limit. */
  DEFAULT_TENANT_MAX_QUEUED: z.coerce.number().int().min(1).optional(),
  /** How often the API reads the tenants' concurrency caps, in ms: a capped tenant's jobs go onto entries no larger than its cap. Default 5000. */
  TENANT_CAP_CACHE_MS: z.coerce.number().int().min(50).max(60_000).default(5000),
  /**
   * Queue deadline, in seconds (1 to 259200), of jobs and batches that name no maxQueueSeconds on
   * a model whose manifest sets none: work not started by then ends `expired`. Unset: no limit.
   */
  DEFAULT_MAX_QUEUE_SECONDS: z.coerce.number().int().min(1).max(259_200).optional(),
  /** Requests per second allowed to one API key (per API process); 0 disables the limit. Default 2000. */
  RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(0).default(2000),
  /** How long `POST /v2/models/:name/infer` waits for its job before answering 504. Default 30. */
  V2_INFER_TIMEOUT_S: z.coerce.number().min(1).max(60).default(30),
  /** After POST /v1/webhooks/secret/rotate, how long the previous secret keeps signing alongside the new one, in seconds. Default 86400 (24 h). */
  WEBHOOK_ROTATION_WINDOW_S: z.coerce.number().int().min(0).default(86_400),
  /** Key for operator routes (queue dashboard); unset disables them. */
  ADMIN_API_KEY: z.string().min(16).optional(),
  /** Long-polls (`?wait=N` > 0, v2 infer) one tenant may hold at once in one API process; past it 429 too_many_waiters. Default 200. */
  LONG_POLL_MAX_WAITERS_PER_TENANT: z.coerce.number().int().min(1).default(200),
  /** A long-poll reads its job or batch again this often even without a pub/sub message (a lost message costs this long). Default 5000. */
  LONG_POLL_RECHECK_MS: z.coerce.number().int().min(10).max(60_000).default(DEFAULT_RECHECK_MS),
  /** Requests per second one client address may send without a cached API key (missing, malformed or not yet looked up), counted before any database lookup; past it 429 auth_rate_limited. 0 disables. Default 50. */
  AUTH_RATE_LIMIT_PER_IP: z.coerce.number().int().min(0).default(50),
  /** API keys the auth cache holds per process (valid keys; refused keys get a separate cache of the same size). Default 10,000. */
  AUTH_CACHE_SIZE: z.coerce.number().int().min(1).default(10_000),
  /** Manual redeliveries (POST /v1/jobs/:id/webhooks/redeliver) allowed per webhook event, for its lifetime; past it 429 redelivery_limit. Default 10. */
  WEBHOOK_MAX_REDELIVERIES: z.coerce.number().int().min(0).default(10),
  /** Longest line (one item) of an NDJSON batch body, e.g. 1mb; past it 413 line_too_large. Default: BODY_LIMIT (1mb). */
  BATCH_MAX_LINE_BYTES: z
    .string()
    .refine((v) => (bytes.parse(v) ?? 0) > 0, { message: "must be a size such as 1mb or 1048576" })
    .optional(),
  /**
   * GET /v1/jobs and GET /v1/batches requests of one tenant that read the database at once in one
   * API process (a page may read up to LIST_SCAN_ROWS rows); up to 32 more wait their turn, each at most 10 s, and
   * past that 429 too_many_lists. Other tenants' lists never wait for them. Default 2.
   */
  MAX_LISTS_PER_TENANT: z.coerce.number().int().min(1).default(2),
  /** Batch creations at once in one API process; each streams its body into one open transaction (one of the API's 16 PostgreSQL connections). Past it 503 batch_uploads_busy. Default 4. */
  MAX_BATCH_UPLOADS: z.coerce.number().int().min(1).max(12).default(4),
  /** Batch creations at once of one tenant in one API process; past it 429 too_many_batch_uploads. Default 2. */
  MAX_BATCH_UPLOADS_PER_TENANT: z.coerce.number().int().min(1).default(2),
  /** How long a batch creation waits for a free upload slot before that 429 or 503 (0: refuse at once). Default 5000. */
  BATCH_UPLOAD_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /**
   * GET /v1/batches/:id/results streams at once in one API process; past it 503
   * result_streams_busy with Retry-After. Default 32.
   */
  MAX_RESULT_STREAMS: z.coerce.number().int().min(1).default(32),
  /** Results streams at once of one tenant in one API process; past it 429 too_many_result_streams. Default 8. */
  MAX_RESULT_STREAMS_PER_TENANT: z.coerce.number().int().min(1).default(8),
  /**
   * Most bytes of result and error JSON a results stream reads from PostgreSQL at a time, e.g.
   * 512kb (an item larger than that is read alone). Default 1mb.
   */
  RESULT_STREAM_PAGE_BYTES: z
    .string()
    .refine((v) => (bytes.parse(v) ?? 0) > 0, { message: "must be a size such as 1mb or 1048576" })
    .default("1mb"),
  /** A results stream whose client has not taken a written page for this long is closed, its slot freed. Default 30000. */
  RESULT_STREAM_IDLE_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /** How long opening a PostgreSQL connection (or waiting for a free one) may take before a request answers 503. Default 1500. */
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_CONNECT_TIMEOUT_MS),
  /**
   * PostgreSQL statement_timeout of the API's connections (0: none); a query gets this plus a
   * fifth (at most 1 s) on the client side, which is how long a hung server can hold a request:
   * the default answers a frozen PostgreSQL with 503 within 2 s. The API's statements are small
   * reads and grouped writes; a batch upload's chunk inserts have their own 30 s bound. Default 1500.
   */
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(1500),
  /**
   * Requests one API process serves at once (health probes, metrics scrapes and long-polls while
   * they wait aside); past it 503 `overloaded` with Retry-After, before any database work. Default 256.
   */
  MAX_REQUESTS_IN_FLIGHT: z.coerce.number().int().min(1).default(256),
  /** Bound on one Redis command of the API (queue adds, publishes, reads); past it the request answers 503 (a submit is still accepted). Default 1000. */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(DEFAULT_REDIS_COMMAND_TIMEOUT_MS),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

export const loadApiEnv = (source: NodeJS.ProcessEnv = process.env): ApiEnv => parseEnv(ApiEnv, source);

/** A size setting (`1mb`, `1048576`) in bytes; the schema has checked it, 1 MiB is only the type's fallback. */
const sizeInBytes = (size: string): number => bytes.parse(size) ?? 1024 * 1024;

/** The byte sizes of a batch's limits: the longest NDJSON line (BATCH_MAX_LINE_BYTES, else BODY_LIMIT) and a results stream's page (RESULT_STREAM_PAGE_BYTES). */
export function batchByteLimits(env: Pick<ApiEnv, "BATCH_MAX_LINE_BYTES" | "BODY_LIMIT" | "RESULT_STREAM_PAGE_BYTES">): { maxLineBytes: number; pageBytes: number } {
  return { maxLineBytes: sizeInBytes(env.BATCH_MAX_LINE_BYTES ?? env.BODY_LIMIT), pageBytes: sizeInBytes(env.RESULT_STREAM_PAGE_BYTES) };
}
