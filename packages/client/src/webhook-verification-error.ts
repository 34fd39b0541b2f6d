/** A webhook delivery whose signature, timestamp or body did not verify: do not act on it. */
export class WebhookVerificationError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "WebhookVerificationError";
  }
}
