/**
 * No answer from the API: the connection failed, was reset, or an attempt passed `timeoutMs`, and
 * the retries (when the request could be replayed) did not get one either. `cause` is the last
 * underlying error. A streamed batch body is never replayed, so its creation may or may not have
 * happened: look it up by its Idempotency-Key (send the same items again with the same key).
 */
export class InferlineConnectionError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "InferlineConnectionError";
  }
}
