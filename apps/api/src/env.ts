import bytes from "bytes";
import { z } from "zod";
import { ConnectionEnv, parseEnv, setting, SharedEnv } from "@inferline/contracts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "@inferline/db";
import { DEFAULT_RECHECK_MS, DEFAULT_REDIS_COMMAND_TIMEOUT_MS } from "@inferline/queue";

// Each setting's default is its schema's `.default()`, its description the `setting()` beside it;
// docs/configuration.md and .env.example are generated from them (pnpm generate:settings-docs).

const size = z.string().refine((v) => (bytes.parse(v) ?? 0) > 0, { message: "must be a size such as 1mb or 1048576" });

export const ApiEnv = SharedEnv.extend(
  ConnectionEnv({
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    // The API's statements are small reads and grouped writes: a frozen PostgreSQL answers 503 within 2 s.
    statementTimeoutMs: 1500,
    redisCommandTimeoutMs: DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  }).shape,
).extend({
  PORT: setting(z.coerce.number().int().min(0).max(65535).default(3000), { description: "listening port" }),
  HOST: setting(z.string().default("0.0.0.0"), { description: "listening address" }),
  BODY_LIMIT: setting(z.string().default("1mb"), {
    description: "largest JSON body of a single-job request (inflated size)",
  }),
  BATCH_BODY_LIMIT: setting(z.string().default("200mb"), {
    description: "largest body of a batch request (inflated size)",
  }),
  BATCH_MAX_LINE_BYTES: setting(size.optional(), {
    description: "longest line (one item) of an NDJSON batch body; past it 413 `line_too_large`",
    defaultText: "`BODY_LIMIT`",
    example: "1mb",
  }),
  /** Each creation streams its body into one open transaction, on one of the API's 16 PostgreSQL connections. */
  MAX_BATCH_UPLOADS: setting(z.coerce.number().int().min(1).max(12).default(4), {
    description:
      "batch creations at once per API process, each streaming into one transaction (at most 12); past it 503 `batch_uploads_busy`",
  }),
  MAX_BATCH_UPLOADS_PER_TENANT: setting(z.coerce.number().int().min(1).default(2), {
    description: "batch creations at once per tenant per process; past it 429 `too_many_batch_uploads`",
  }),
  BATCH_UPLOAD_WAIT_MS: setting(z.coerce.number().int().min(0).max(60_000).default(5000), {
    description: "how long a batch creation waits for a free upload slot before that 429 or 503 (0: refuse at once)",
  }),
  MAX_RESULT_STREAMS: setting(z.coerce.number().int().min(1).default(32), {
    description: "`GET /v1/batches/:id/results` streams at once per process; past it 503 `result_streams_busy`",
  }),
  MAX_RESULT_STREAMS_PER_TENANT: setting(z.coerce.number().int().min(1).default(8), {
    description: "result streams at once per tenant per process; past it 429 `too_many_result_streams`",
  }),
  RESULT_STREAM_PAGE_BYTES: setting(size.default("1mb"), {
    description: "most bytes of results a stream reads from PostgreSQL at a time (a larger item is read alone)",
  }),
  RESULT_STREAM_IDLE_MS: setting(z.coerce.number().int().min(100).max(600_000).default(30_000), {
    description: "a stream whose client has not taken a written page for this long is closed",
  }),
  /** A page may read up to LIST_SCAN_ROWS rows; other tenants' lists never wait for one tenant's. */
  MAX_LISTS_PER_TENANT: setting(z.coerce.number().int().min(1).default(2), {
    description:
      "`GET /v1/jobs` and `GET /v1/batches` of one tenant reading at once per process; up to 32 more wait (each at most 10 s), then 429 `too_many_lists`",
  }),
  MAX_QUEUE_DEPTH: setting(z.coerce.number().int().min(1).default(1_000_000), {
    description: "queued jobs and batch items per model above which submits answer 503 `queue_full`",
  }),
  DEFAULT_TENANT_MAX_QUEUED: setting(z.coerce.number().int().min(1).optional(), {
    description:
      "queued work per tenant for tenants without a `maxQueued` of their own; past it 429 `quota_exceeded` ([quotas](fair-share.md#quotas))",
    defaultText: "unset (no limit)",
    example: "100000",
  }),
  TENANT_CAP_CACHE_MS: setting(z.coerce.number().int().min(50).max(60_000).default(5000), {
    description:
      "how often the API reads the tenants' concurrency caps: a capped tenant's jobs go onto entries no larger than its cap",
  }),
  DEFAULT_MAX_QUEUE_SECONDS: setting(z.coerce.number().int().min(1).max(259_200).optional(), {
    description:
      "queue deadline (1 to 259,200 s) of work that names none, on models whose manifest sets none: work not started by then ends `expired` ([deadlines](deadlines.md))",
    defaultText: "unset (no limit)",
    example: "3600",
  }),
  MAX_REQUESTS_IN_FLIGHT: setting(z.coerce.number().int().min(1).default(256), {
    description:
      "requests one process serves at once (probes, scrapes and waiting long-polls aside); past it 503 `overloaded`, before any database work",
  }),
  RATE_LIMIT_PER_SECOND: setting(z.coerce.number().int().min(0).default(2000), {
    description: "requests per second per API key per process; 0 disables",
  }),
  AUTH_RATE_LIMIT_PER_IP: setting(z.coerce.number().int().min(0).default(50), {
    description:
      "requests per second one address may send without a cached valid key, before any database lookup; past it 429 `auth_rate_limited`; 0 disables",
  }),
  AUTH_CACHE_SIZE: setting(z.coerce.number().int().min(1).default(10_000), {
    description:
      "valid API keys cached per process (30 s each; a revocation evicts at once); refused keys get a cache of the same size",
  }),
  LONG_POLL_MAX_WAITERS_PER_TENANT: setting(z.coerce.number().int().min(1).default(200), {
    description: "long-polls (`?wait=N`, v2 `infer`) one tenant may hold per process; past it 429 `too_many_waiters`",
  }),
  LONG_POLL_RECHECK_MS: setting(z.coerce.number().int().min(10).max(60_000).default(DEFAULT_RECHECK_MS), {
    description:
      "a long-poll reads again this often without a pub/sub wake-up, so a lost message costs this long (10 to 60,000)",
  }),
  V2_INFER_TIMEOUT_S: setting(z.coerce.number().min(1).max(60).default(30), {
    description: "how long `POST /v2/models/:name/infer` waits for its job before 504 (1 to 60)",
  }),
  WEBHOOK_ROTATION_WINDOW_S: setting(z.coerce.number().int().min(0).default(86_400), {
    description: "after a secret rotation, how long the previous secret keeps signing beside the new one",
  }),
  WEBHOOK_MAX_REDELIVERIES: setting(z.coerce.number().int().min(0).default(10), {
    description: "manual redeliveries per webhook event, for its lifetime; past it 429 `redelivery_limit`",
  }),
  ADMIN_API_KEY: setting(z.string().min(16).optional(), {
    description: "key of the BullMQ dashboard at `/admin/queues` (at least 16 characters)",
    defaultText: "unset (dashboard off)",
    example: "",
  }),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

export const loadApiEnv = (source: NodeJS.ProcessEnv = process.env): ApiEnv => parseEnv(ApiEnv, source);

/** A size setting (`1mb`, `1048576`) in bytes; the schema has checked it, 1 MiB is only the type's fallback. */
const sizeInBytes = (size: string): number => bytes.parse(size) ?? 1024 * 1024;

/** The byte sizes of a batch's limits: the longest NDJSON line (BATCH_MAX_LINE_BYTES, else BODY_LIMIT) and a results stream's page (RESULT_STREAM_PAGE_BYTES). */
export function batchByteLimits(
  env: Pick<ApiEnv, "BATCH_MAX_LINE_BYTES" | "BODY_LIMIT" | "RESULT_STREAM_PAGE_BYTES">,
): { maxLineBytes: number; pageBytes: number } {
  return {
    maxLineBytes: sizeInBytes(env.BATCH_MAX_LINE_BYTES ?? env.BODY_LIMIT),
    pageBytes: sizeInBytes(env.RESULT_STREAM_PAGE_BYTES),
  };
}
