import crypto from "node:crypto";
import { type FlatTensor } from "@inferline/contracts";
import { modelFingerprint, type ResolvedModel } from "@inferline/runtime";

/** Everything a cached result depends on. */
export interface CacheKeyParts {
  tenantId: string;
  model: string;
  version: string;
  /** The model version's fingerprint (contracts' modelFingerprint): its file and result-shaping manifest parts. */
  fingerprint: string;
  /** Validated inputs (flat data, numbers as parsed). */
  inputs: readonly FlatTensor[];
  /** The outputs the request names; empty for all. */
  requestedOutputs: readonly string[];
}

/** Hex digits at the head of a digest that name the fingerprint it was computed with (see fingerprintTag). */
const TAG_DIGITS = 16;

const tags = new Map<string, string>();

/**
 * The head of every digest computed with `fingerprint`: the first 16 hex digits of its SHA-256.
 * A worker compares it with its own model file's (see keyMatchesFingerprint), so a result is
 * stored only under keys computed for the file that produced it. A process knows a few
 * fingerprints, read once each: they are remembered.
 */
export function fingerprintTag(fingerprint: string): string {
  let tag = tags.get(fingerprint);
  if (tag === undefined) tags.set(fingerprint, (tag = crypto.hash("sha256", fingerprint, "hex").slice(0, TAG_DIGITS)));
  return tag;
}

/**
 * Whether `digest` was computed with `fingerprint` (see fingerprintTag): during a rolling deploy
 * that replaces a version's file, the API that keyed a job and the worker that ran it may hold
 * different files, and the worker's result must not be served as the other file's.
 */
export function keyMatchesFingerprint(digest: string, fingerprint: string): boolean {
  return digest.startsWith(fingerprintTag(fingerprint));
}

/**
 * The digest a result is cached under: 64 hex digits, the fingerprint's tag (see fingerprintTag)
 * then 48 of a SHA-256 over every part. Canonical: inputs in name order, each as name, datatype,
 * shape and flat data; requested outputs sorted and without repeats. JSON numbers are compared as
 * parsed, so `1.0`, `1` and `1e0` are one value, while any change of a value, a shape or a datatype
 * is another key. The tenant is part of the digest, so no tenant can ever reach another's entry.
 */
export function cacheKeyDigest(parts: CacheKeyParts): string {
  const sorted =
    parts.inputs.length > 1
      ? [...parts.inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      : parts.inputs;
  const inputs = sorted.map((t) => [t.name, t.datatype, t.shape, t.data]);
  const outputs = parts.requestedOutputs.length > 0 ? [...new Set(parts.requestedOutputs)].sort() : [];
  // One-shot hash: a Hash object per submit costs more than the digest itself.
  const hash = crypto.hash(
    "sha256",
    JSON.stringify([parts.tenantId, parts.model, parts.version, parts.fingerprint, outputs, inputs]),
    "hex",
  );
  return fingerprintTag(parts.fingerprint) + hash.slice(TAG_DIGITS);
}

/**
 * The digest of a request to a resolved model: its name, version and fingerprint (see
 * modelFingerprint) beside the tenant, inputs and requested outputs. The one place that says what a
 * cached result depends on; jobs and batch items both key through it.
 */
export function requestCacheKey(
  tenantId: string,
  model: ResolvedModel,
  inputs: readonly FlatTensor[],
  requestedOutputs: readonly string[],
): string {
  return cacheKeyDigest({
    tenantId,
    model: model.manifest.name,
    version: model.version,
    fingerprint: modelFingerprint(model),
    inputs,
    requestedOutputs,
  });
}
