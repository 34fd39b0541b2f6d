import { Batches } from "./batches.ts";
import type { ClientOptions } from "./client-options.ts";
import { Jobs } from "./jobs.ts";
import { Models } from "./models.ts";
import { Transport } from "./transport.ts";

/**
 * A typed client of one Inferline API: `jobs`, `batches` and `models`, over the global fetch.
 * Network errors, timeouts, 429 and 503 are retried (`retries`, default 5) after the server's
 * Retry-After or a jittered backoff; submits carry an Idempotency-Key, generated when not given,
 * that every retry reuses, so a retry never creates a second job.
 */
export class InferlineClient {
  readonly jobs: Jobs;
  readonly batches: Batches;
  readonly models: Models;
  readonly baseUrl: string;

  constructor(options: ClientOptions) {
    if (!options.baseUrl) throw new TypeError("InferlineClient needs a baseUrl");
    if (!options.apiKey) throw new TypeError("InferlineClient needs an apiKey");
    const transport = new Transport(options);
    this.baseUrl = transport.baseUrl;
    this.jobs = new Jobs(transport);
    this.batches = new Batches(transport);
    this.models = new Models(transport);
  }
}
