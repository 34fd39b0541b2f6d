import { Webhook } from "standardwebhooks";
import type { WebhookEvent } from "./types.ts";
import { WebhookVerificationError } from "./webhook-verification-error.ts";

/** Request headers as Node (`req.headers`), the Fetch API (`Headers`) or a plain object give them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

const NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;

/**
 * Verifies a delivery by the Standard Webhooks reference implementation (`standardwebhooks`):
 * the `webhook-signature` (one or more space-separated `v1,` signatures: during a rotation the
 * API signs with both secrets) must match the raw body under one of `secrets`, and the timestamp
 * be within five minutes. Pass the body exactly as received, before any JSON parsing. Returns the
 * parsed event; throws WebhookVerificationError otherwise.
 */
export function verifyWebhook(
  secrets: string | readonly string[],
  headers: WebhookHeaders,
  rawBody: string | Buffer | Uint8Array,
): WebhookEvent {
  const wanted = plainHeaders(headers);
  const body =
    typeof rawBody === "string" ? rawBody : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  let last: unknown;
  for (const secret of typeof secrets === "string" ? [secrets] : secrets) {
    try {
      return new Webhook(secret).verify(body, wanted) as WebhookEvent;
    } catch (err) {
      last = err;
    }
  }
  throw new WebhookVerificationError(
    `webhook did not verify: ${(last as Error | undefined)?.message ?? "no secret given"}`,
    { cause: last },
  );
}

/** The three Standard Webhooks headers, lower-cased names, single values. */
function plainHeaders(headers: WebhookHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of NAMES) {
    const value = headers instanceof Headers ? headers.get(name) : (headers[name] ?? findIgnoringCase(headers, name));
    const text = Array.isArray(value) ? value.join(" ") : value;
    if (typeof text === "string") out[name] = text;
  }
  return out;
}

function findIgnoringCase(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | string[] | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
