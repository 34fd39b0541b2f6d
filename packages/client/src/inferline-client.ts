import { Batches } from "./batches.ts";
import { resolveClientOptions, type ClientOptions } from "./client-options.ts";
import { JobFailedError } from "./job-failed-error.ts";
import { isTerminalJob, Jobs } from "./jobs.ts";
import { Models } from "./models.ts";
import { Transport } from "./transport.ts";
import type { InferenceResult, JobView, RequestOptions, RunOptions, Tensor } from "./types.ts";
import { Webhooks } from "./webhooks.ts";

/**
 * A typed client of one Inferline API: `run`, `jobs`, `batches`, `models` and `webhooks`, over the
 * global fetch. `baseUrl` and `apiKey` default to INFERLINE_URL and INFERLINE_API_KEY. Failures
 * worth it are retried (`maxRetries`, default 5) after the server's Retry-After or a jittered
 * backoff; creates carry an Idempotency-Key, generated when not given, that every retry reuses,
 * so a retry never makes a second job. Every call takes `timeout`, `maxRetries` and `signal`.
 */
export class InferlineClient {
  readonly jobs: Jobs;
  readonly batches: Batches;
  readonly models: Models;
  readonly webhooks: Webhooks;
  readonly baseUrl: string;

  constructor(options: ClientOptions = {}) {
    const transport = new Transport(resolveClientOptions(options));
    this.baseUrl = transport.baseUrl;
    this.jobs = new Jobs(transport);
    this.batches = new Batches(transport);
    this.models = new Models(transport);
    this.webhooks = new Webhooks(transport);
  }

  /**
   * Runs one job and answers its result: creates it, waits until it ends, and throws
   * JobFailedError when it did not succeed. With `timeoutSeconds`, a job still unfinished then is
   * canceled (JobFailedError, status `canceled`); an aborted `signal` cancels it too, then its
   * reason is thrown. Request failures throw InferlineAPIError's subclasses as every call does.
   */
  async run(model: string, inputs: Tensor[], options: RunOptions = {}): Promise<InferenceResult> {
    const { timeoutSeconds, idempotencyKey, cancelAfter, timeout, maxRetries, signal, ...fields } = options;
    const request: RequestOptions = { timeout, maxRetries, signal };
    const created = await this.jobs.create({ ...fields, model, inputs }, { ...request, idempotencyKey, cancelAfter });
    let job: JobView;
    try {
      job = isTerminalJob(created) ? created : await this.jobs.wait(created.id, { ...request, timeoutSeconds });
    } catch (err) {
      if (signal?.aborted) await this.cancelQuietly(created.id, { timeout, maxRetries });
      throw err;
    }
    if (!isTerminalJob(job)) job = await this.cancelQuietly(job.id, request);
    if (job.status === "succeeded" && job.result) return job.result;
    const late = job.status === "canceled" && timeoutSeconds !== undefined;
    throw new JobFailedError(job, late ? `not finished within ${timeoutSeconds} s` : undefined);
  }

  /** Cancels the job if it is not terminal yet, and answers it as it is then (a job that finished meanwhile keeps its outcome). */
  private async cancelQuietly(id: string, request: RequestOptions): Promise<JobView> {
    return this.jobs.cancel(id, request).catch(() => this.jobs.get(id, request));
  }
}
