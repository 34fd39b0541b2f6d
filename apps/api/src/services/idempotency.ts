import { z } from "zod";

/** The Idempotency-Key header of a create request. */
export const IdempotencyKey = z.string().min(1).max(255);

/** The field fault of a refused Idempotency-Key header (400 invalid_idempotency_key). */
export const IDEMPOTENCY_KEY_FAULT = {
  path: "/headers/idempotency-key",
  message: "Idempotency-Key must be 1 to 255 characters",
};

/** How long an Idempotency-Key returns the first job or batch created with it. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;

/** JSON with sorted keys, so that the same body hashes the same whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
