import type { Transport } from "./transport.ts";
import type { JobWebhooks, RequestOptions, WebhookRedelivery, WebhookSecret } from "./types.ts";

const jobWebhooksPath = (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}/webhooks`;

/** `client.webhooks`: the tenant's signing secret and each job's deliveries. Verify a delivery with `verifyWebhook`. */
export class Webhooks {
  constructor(private readonly transport: Transport) {}

  /** The tenant's current `whsec_` signing secret (and, during a rotation, until when the previous one still signs). */
  secret(options: RequestOptions = {}): Promise<WebhookSecret> {
    return this.transport.json<WebhookSecret>({ method: "GET", path: "/v1/webhooks/secret", options });
  }

  /** Makes a new signing secret; the previous one keeps signing beside it for the API's rotation window. Not retried: each call rotates. */
  rotateSecret(options: RequestOptions = {}): Promise<WebhookSecret> {
    return this.transport.json<WebhookSecret>({ method: "POST", path: "/v1/webhooks/secret/rotate", options });
  }

  /** A job's webhook events and every delivery attempt (time, status code, latency, error), oldest first. */
  deliveries(jobId: string, options: RequestOptions = {}): Promise<JobWebhooks> {
    return this.transport.json<JobWebhooks>({ method: "GET", path: jobWebhooksPath(jobId), options });
  }

  /** Sends the job's latest event again (same webhook-id) as a new attempt; read its outcome with `deliveries`. Each event allows a few. */
  redeliver(jobId: string, options: RequestOptions = {}): Promise<WebhookRedelivery> {
    return this.transport.json<WebhookRedelivery>({
      method: "POST",
      path: `${jobWebhooksPath(jobId)}/redeliver`,
      options,
    });
  }
}
