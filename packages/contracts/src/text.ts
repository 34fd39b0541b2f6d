import { z } from "zod";

/**
 * NUL, and UTF-16 surrogates without their pair: PostgreSQL's text refuses the first and jsonb
 * refuses both (and a lone surrogate would be stored as U+FFFD in text). Scanned by code unit,
 * without the `u` flag, so that a lone surrogate is seen at all.
 */
// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL (\\u0000) or unpaired surrogates (\\ud800-\\udfff)";

/** True when PostgreSQL can store `s` as text and inside jsonb unchanged. */
export function isStorableText(s: string): boolean {
  return !UNSTORABLE.test(s);
}

const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, "g");

/**
 * `s` with each character PostgreSQL cannot store (see isStorableText) replaced by U+FFFD: for
 * text a third party sent that is kept as a record, such as a webhook receiver's answer, which
 * must be stored whatever its bytes rather than refused.
 */
export function toStorableText(s: string): string {
  return s.replace(UNSTORABLE_ALL, "\ufffd");
}

/**
 * A string that reaches the database. Every such field of a request uses it, so that one
 * request's bad string is a 422 naming its field, never a failed statement shared with others.
 */
export const StorableText = z.string().refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE });
export type StorableText = z.infer<typeof StorableText>;
