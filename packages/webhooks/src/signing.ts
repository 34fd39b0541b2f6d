import { Webhook } from "standardwebhooks";

/**
 * The `webhook-signature` header value for one message. The HMACs are computed by the Standard
 * Webhooks reference implementation (the `standardwebhooks` npm package's `Webhook.sign`), not by
 * code of ours: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` keyed by the base64 part of the
 * `whsec_` secret. With several secrets (a rotation window) the signatures are space-separated,
 * as the specification allows, and a receiver accepts the message when any of them verifies.
 */
export function signatureHeader(secrets: string[], id: string, at: Date, body: string): string {
  return secrets.map((secret) => new Webhook(secret).sign(id, at, body)).join(" ");
}

/** The three Standard Webhooks headers plus our content type. */
export function webhookHeaders(secrets: string[], id: string, at: Date, body: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "user-agent": "Inferline-Webhooks/1.0",
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signatureHeader(secrets, id, at, body),
  };
}
