import crypto from "node:crypto";
import { modelFingerprint, type FlatTensor, type ResolvedModel } from "@inferline/contracts";

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

/**
 * The digest a result is cached under. Canonical: inputs in name order, each as name, datatype,
 * shape and flat data; requested outputs sorted and without repeats. JSON numbers are compared as
 * parsed, so `1.0`, `1` and `1e0` are one value, while any change of a value, a shape or a datatype
 * is another key. The tenant is part of the digest, so no tenant can ever reach another's entry.
 */
export function cacheKeyDigest(parts: CacheKeyParts): string {
  const sorted = parts.inputs.length > 1 ? [...parts.inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) : parts.inputs;
  const inputs = sorted.map((t) => [t.name, t.datatype, t.shape, t.data]);
  const outputs = parts.requestedOutputs.length > 0 ? [...new Set(parts.requestedOutputs)].sort() : [];
  // One-shot hash: a Hash object per submit cost more than the digest itself (CPU profile of submit).
  return crypto.hash("sha256", JSON.stringify([parts.tenantId, parts.model, parts.version, parts.fingerprint, outputs, inputs]), "hex");
}

/**
 * The digest of a request to a resolved model: its name, version and fingerprint (see
 * modelFingerprint) beside the tenant, inputs and requested outputs. The one place that says what a
 * cached result depends on; jobs and batch items both key through it.
 */
export function requestCacheKey(tenantId: string, model: ResolvedModel, inputs: readonly FlatTensor[], requestedOutputs: readonly string[]): string {
  return cacheKeyDigest({ tenantId, model: model.manifest.name, version: model.version, fingerprint: modelFingerprint(model), inputs, requestedOutputs });
}
