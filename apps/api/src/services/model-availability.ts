import {
  ServiceUnavailableError,
  summarizeReadiness,
  type ModelReadiness,
  type WorkerModelReport,
} from "@inferline/contracts";
import { type ModelRepository } from "@inferline/runtime";

/** What a client is told to wait before retrying a model no worker can serve: an operator has to act, so not seconds. */
export const MODEL_UNAVAILABLE_RETRY_AFTER_S = 30;

export interface ModelAvailabilityOptions {
  /** How long one reading of the workers' reports is used, ms. Default 1000. */
  maxAgeMs?: number;
  /** How long a submit waits for a new reading before going on with the previous one (or none), ms. Default 200. */
  submitWaitMs?: number;
  /** Oldest previous reading a submit goes on with when a new one is slow, ms. Default 30000. */
  staleMs?: number;
  /** A reading that failed (Redis down): submits go on as if no worker had reported anything. */
  onFailure?: (err: Error) => void;
}

type Snapshot = { at: number; models: Map<string, ModelReadiness> };

/**
 * Which models live workers can serve, from their readiness reports in Redis (see
 * ModelReadinessPublisher), read for every model at once and at most once per `maxAgeMs`.
 *
 * A submit is refused (503 `model_unavailable`) only when at least one live worker reported the
 * version failed to load and none reported it ready. A model no live worker reported at all is
 * accepted, as before: workers may start after the API, or scale from zero, and the job waits in
 * its queue (its queue deadline, if any, still applies). A reading that failed or is slow never
 * fails a submit: it goes on as if nothing had been reported.
 */
export class ModelAvailability {
  private snapshot: Snapshot | undefined;
  private reading: Promise<Snapshot> | undefined;
  /** When the last reading failed: for `maxAgeMs` after it, submits do not wait on Redis at all. */
  private failedAt = -Infinity;
  private readonly maxAgeMs: number;
  private readonly submitWaitMs: number;
  private readonly staleMs: number;

  constructor(
    private readonly read: (models: readonly string[]) => Promise<Map<string, WorkerModelReport[]>>,
    private readonly models: Pick<ModelRepository, "names" | "manifest">,
    private readonly options: ModelAvailabilityOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.submitWaitMs = options.submitWaitMs ?? 200;
    this.staleMs = options.staleMs ?? 30_000;
  }

  /**
   * Every model's readiness. `fresh` reads Redis now (readiness probes, whose answer must not lag
   * a worker that just started); the reading then serves submits too. Rejects when Redis does.
   */
  async all(options: { fresh?: boolean } = {}): Promise<Map<string, ModelReadiness>> {
    const current = this.snapshot;
    if (!options.fresh && current && Date.now() - current.at < this.maxAgeMs) return current.models;
    return (await this.refresh()).models;
  }

  /** One model's readiness (see all()). */
  async of(model: string, options: { fresh?: boolean } = {}): Promise<ModelReadiness> {
    return (
      (await this.all(options)).get(model) ??
      summarizeReadiness(
        this.models.manifest(model).versions.map((v) => v.version),
        [],
      )
    );
  }

  /**
   * Throws 503 `model_unavailable` (Retry-After) when workers reported `model@version` failed to
   * load and none serves it. Waits at most `submitWaitMs` for a new reading, then goes on with the
   * previous one (up to `staleMs` old); with none, or when Redis failed, admits.
   */
  async assertServable(model: string, version: string): Promise<void> {
    const models = await this.forSubmit();
    if (models) refuseIfFailed(models, model, version);
  }

  /**
   * assertServable without waiting: true once decided (it throws when refused), false when a new
   * reading is due (the caller then awaits assertServable).
   */
  servableNow(model: string, version: string): boolean {
    const models = this.decidedNow();
    if (models === undefined) return false;
    if (models) refuseIfFailed(models, model, version);
    return true;
  }

  /**
   * What a submit goes on with without reading Redis: the fresh reading's models, null within
   * maxAgeMs of a failed reading (admit, as with no reports), or undefined when a reading is due.
   */
  private decidedNow(): Map<string, ModelReadiness> | null | undefined {
    const now = Date.now();
    const current = this.snapshot;
    if (current && now - current.at < this.maxAgeMs) return current.models;
    return now - this.failedAt < this.maxAgeMs ? null : undefined;
  }

  private async forSubmit(): Promise<Map<string, ModelReadiness> | undefined> {
    const decided = this.decidedNow();
    if (decided !== undefined) return decided ?? undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const bound = new Promise<undefined>(
        (resolve) => (timer = setTimeout(() => resolve(undefined), this.submitWaitMs)),
      );
      const snapshot = await Promise.race([this.refresh(), bound]);
      if (snapshot) return snapshot.models;
      const previous = this.snapshot;
      return previous && Date.now() - previous.at < this.staleMs ? previous.models : undefined;
    } catch {
      return undefined; // Redis failed: reported by onFailure, and the submit goes on.
    } finally {
      clearTimeout(timer);
    }
  }

  /** One reading at a time; concurrent callers share it. */
  private refresh(): Promise<Snapshot> {
    this.reading ??= this.readAll().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readAll(): Promise<Snapshot> {
    const names = this.models.names();
    try {
      const reports = await this.read(names);
      const models = new Map(
        names.map((name) => [
          name,
          summarizeReadiness(
            this.models.manifest(name).versions.map((v) => v.version),
            reports.get(name) ?? [],
          ),
        ]),
      );
      const snapshot = { at: Date.now(), models };
      this.snapshot = snapshot;
      this.failedAt = -Infinity;
      return snapshot;
    } catch (err) {
      // Stale knowledge is worse than none: a worker may have been fixed since.
      this.snapshot = undefined;
      this.failedAt = Date.now();
      this.options.onFailure?.(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }
}

function refuseIfFailed(models: Map<string, ModelReadiness>, model: string, version: string): void {
  const state = models.get(model)?.versions[version];
  if (state?.state !== "failed") return;
  throw new ServiceUnavailableError(
    "model_unavailable",
    `model ${model}@${version} cannot be served: ${state.failedWorkers === 1 ? "the worker" : `all ${state.failedWorkers} workers`} told to serve it failed to load it (${(state.codes ?? []).join(", ")}) and none serves it; retry after an operator fixed it`,
    MODEL_UNAVAILABLE_RETRY_AFTER_S,
  );
}
