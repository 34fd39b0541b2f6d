import { z } from "zod";
import { envBoolean, parseEnv, SharedEnv } from "@inferline/contracts";

export const ApiEnv = SharedEnv.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default("0.0.0.0"),
  /** Largest JSON body of a single-job request. Default 1mb. */
  BODY_LIMIT: z.string().default("1mb"),
  /** Largest body of a batch request. Default 200mb. */
  BATCH_BODY_LIMIT: z.string().default("200mb"),
  /** Queued jobs per model above which submits answer 503 with Retry-After. Default 1,000,000. */
  MAX_QUEUE_DEPTH: z.coerce.number().int().min(1).default(1_000_000),
  /** Requests per second allowed to one API key (per API process); 0 disables the limit. Default 2000. */
  RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(0).default(2000),
  /** How long `POST /v2/models/:name/infer` waits for its job before answering 504. Default 30. */
  V2_INFER_TIMEOUT_S: z.coerce.number().min(1).max(60).default(30),
  /** Attempts of a queue entry before its jobs fail for good. Default 5. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  /** First retry delay in ms, doubling each attempt with jitter. Default 1000. */
  RETRY_BACKOFF_MS: z.coerce.number().int().min(0).default(1000),
  /** Allow webhook targets on loopback/private/link-local addresses (tests, single-host setups). Default false. */
  WEBHOOK_ALLOW_PRIVATE: envBoolean.default(false),
  /** After POST /v1/webhooks/secret/rotate, how long the previous secret keeps signing alongside the new one, in seconds. Default 86400 (24 h). */
  WEBHOOK_ROTATION_WINDOW_S: z.coerce.number().int().min(0).default(86_400),
  /** Key for operator routes (queue dashboard); unset disables them. */
  ADMIN_API_KEY: z.string().min(16).optional(),
  LOG_PRETTY: envBoolean.default(false),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

export const loadApiEnv = (source: NodeJS.ProcessEnv = process.env): ApiEnv => parseEnv(ApiEnv, source);
